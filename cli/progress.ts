// Following a run: polls the interpreter's `progress` query and draws a bar on a terminal, or
// writes a line every so often when output goes to a file or pipe. Frames and throughput come
// from the latest heartbeats (GPU steps report frames_done / frames_per_s); tasks from the counts.
import { ServiceError, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type winston from 'winston';
import { progressQuery, type ProgressReport } from '../workflows/engine/messages';

export interface ProgressTotals {
  tasksDone: number;
  tasksCached: number;
  tasksTotal: number;
  tasksRunning: number;
  tasksFailed: number;
  /** Unknown totals (a scatter whose input is not ready) make the total a lower bound. */
  totalKnown: boolean;
  framesDone: number;
  framesPerSecond: number;
}

function numberIn(details: Record<string, unknown> | undefined, key: string): number {
  const value = details?.[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

export function totals(report: ProgressReport): ProgressTotals {
  const t: ProgressTotals = { tasksDone: 0, tasksCached: 0, tasksTotal: 0, tasksRunning: 0, tasksFailed: 0, totalKnown: true, framesDone: 0, framesPerSecond: 0 };
  for (const step of Object.values(report.steps)) {
    t.tasksDone += step.done + step.cached;
    t.tasksCached += step.cached;
    t.tasksRunning += step.running;
    t.tasksFailed += step.failed;
    if (step.total === null) t.totalKnown = false;
    else t.tasksTotal += step.total;
  }
  for (const device of Object.values(report.devices)) {
    if (device.state !== 'active') continue;
    t.framesDone += numberIn(device.latestHeartbeat?.details, 'frames_done');
    t.framesPerSecond += numberIn(device.latestHeartbeat?.details, 'frames_per_s');
  }
  return t;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One device's throughput in a few characters, e.g. `gpu0 12 done 8.1s/task 310 fr/s`. */
export function deviceSummary(id: string, device: ProgressReport['devices'][string]): string {
  const short = id.slice(id.lastIndexOf('.') + 1);
  const parts = [`${short}${device.state === 'active' ? '' : `(${device.state})`} ${device.done} done`];
  if (device.meanTaskSeconds !== null) parts.push(`${device.meanTaskSeconds.toFixed(1)}s/task`);
  const fps = numberIn(device.latestHeartbeat?.details, 'frames_per_s');
  if (fps) parts.push(`${fps.toFixed(0)} fr/s`);
  return parts.join(' ');
}

/** Estimates time left from the completion rate seen while watching (not from the start). */
export class EtaEstimator {
  private first?: { at: number; done: number };

  update(done: number, total: number, now = Date.now()): number | undefined {
    if (!this.first) this.first = { at: now, done };
    const rate = (done - this.first.done) / ((now - this.first.at) / 1000);
    if (!(rate > 0) || total <= done) return total <= done ? 0 : undefined;
    return (total - done) / rate;
  }
}

export function progressLine(report: ProgressReport, eta: number | undefined, width = 24): string {
  const t = totals(report);
  const fraction = t.tasksTotal ? Math.min(1, t.tasksDone / t.tasksTotal) : 0;
  const filled = Math.round(fraction * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const parts = [`${bar} ${t.tasksDone}/${t.tasksTotal}${t.totalKnown ? '' : '+'} tasks`];
  if (t.tasksCached) parts.push(`${t.tasksCached} cached`);
  if (t.tasksRunning) parts.push(`${t.tasksRunning} running`);
  if (t.tasksFailed) parts.push(`${t.tasksFailed} failed`);
  if (t.framesDone) parts.push(`${t.framesDone} frames`);
  if (t.framesPerSecond) parts.push(`${t.framesPerSecond.toFixed(0)} frames/s`);
  parts.push(`ETA ${eta === undefined ? '?' : formatDuration(eta)}`);
  const devices = Object.entries(report.devices).map(([id, d]) => deviceSummary(id, d));
  return parts.join(', ') + (devices.length ? ` | ${devices.join('; ')}` : '');
}

export interface FollowOptions {
  /** Draw nothing (just wait for the result). */
  enabled: boolean;
  /** Seconds between lines when stderr is not a terminal. */
  lineIntervalS: number;
}

/**
 * The run's result, waiting through lost connections (a restarting server, a network blip): only
 * the workflow's own outcome ends the wait.
 */
export async function durableResult<T>(handle: WorkflowHandle, logger: winston.Logger): Promise<T> {
  for (;;) {
    try {
      return (await handle.result()) as T;
    } catch (err) {
      if (err instanceof WorkflowFailedError || !(err instanceof ServiceError)) throw err;
      logger.warn(`lost contact with Temporal (${err.message}); still waiting for the run`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/**
 * Shows progress until the run closes; returns the workflow's result (throws its failure).
 * Query failures (server restarting, no worker yet) are tolerated: the display just waits.
 */
export async function follow<T>(handle: WorkflowHandle, logger: winston.Logger, options: FollowOptions): Promise<T> {
  const result = durableResult<T>(handle, logger);
  let closed = false;
  void result.then(
    () => (closed = true),
    () => (closed = true),
  );
  const tty = Boolean(process.stderr.isTTY);
  const eta = new EtaEstimator();
  let lastLineAt = 0;
  let lastLine = '';
  while (!closed) {
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    if (closed) break;
    let report: ProgressReport;
    try {
      report = await handle.query(progressQuery);
    } catch (err) {
      logger.debug(`progress query failed: ${(err as Error).message}`);
      continue;
    }
    const t = totals(report);
    const line = progressLine(report, eta.update(t.tasksDone, t.tasksTotal));
    if (options.enabled && tty) process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
    if (line !== lastLine && Date.now() - lastLineAt >= options.lineIntervalS * 1000) {
      // The run log gets the same periodic record whatever the terminal shows.
      logger.verbose('progress', { tasks_done: t.tasksDone, tasks_total: t.tasksTotal, frames_done: t.framesDone, frames_per_s: t.framesPerSecond });
      if (options.enabled && !tty) process.stderr.write(`progress: ${line}\n`);
      lastLineAt = Date.now();
      lastLine = line;
    }
  }
  if (options.enabled && tty) process.stderr.write('\r\x1b[K');
  return result;
}
