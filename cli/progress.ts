// Following a run: every second, the interpreter's `progress` query plus the running tasks' live
// heartbeats (cli/live.ts), drawn as a bar on a terminal, or a line every so often when output
// goes to a file or pipe. Per device: frames done, frames/s, GPU utilisation and memory.
import { ServiceError, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type winston from 'winston';
import type { ProgressReport } from '../workflows/interpreter/messages';
import { snapshot, type DeviceView, type RunView } from './live';

export interface TaskTotals {
  tasksDone: number;
  tasksCached: number;
  tasksTotal: number;
  tasksRunning: number;
  tasksFailed: number;
  /** Unknown totals (a scatter whose input is not ready) make the total a lower bound. */
  totalKnown: boolean;
}

export function taskTotals(report: ProgressReport): TaskTotals {
  const t: TaskTotals = { tasksDone: 0, tasksCached: 0, tasksTotal: 0, tasksRunning: 0, tasksFailed: 0, totalKnown: true };
  for (const step of Object.values(report.steps)) {
    t.tasksDone += step.done + step.cached;
    t.tasksCached += step.cached;
    t.tasksRunning += step.running;
    t.tasksFailed += step.failed;
    if (step.total === null) t.totalKnown = false;
    else t.tasksTotal += step.total;
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

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');

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

/** One device in a few characters, e.g. `gpu0 computing 563 fr/s 99% 24.9 GiB`. */
export function deviceSummary(device: DeviceView): string {
  const short = device.id.slice(device.id.lastIndexOf('.') + 1);
  const parts = [short, device.phase];
  if (device.framesPerSecond !== null) parts.push(`${device.framesPerSecond.toFixed(0)} fr/s`);
  if (device.gpuUtilization !== null) parts.push(`${Math.round(device.gpuUtilization * 100)}%`);
  if (device.gpuMemoryBytes !== null) parts.push(formatBytes(device.gpuMemoryBytes));
  if (device.restarts) parts.push(`${device.restarts} restart(s)`);
  return parts.join(' ');
}

/** The one-line view: tasks, frames, rate, ETA, then every device. */
export function progressLine(report: ProgressReport, view: RunView, taskEta: number | undefined, width = 24): string {
  const t = taskTotals(report);
  const fraction = view.framesTotal ? view.framesDone / view.framesTotal : t.tasksTotal ? t.tasksDone / t.tasksTotal : 0;
  const filled = Math.round(Math.min(1, fraction) * width);
  const parts = [`[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${t.tasksDone}/${t.tasksTotal}${t.totalKnown ? '' : '+'} tasks`];
  if (t.tasksCached) parts.push(`${t.tasksCached} cached`);
  if (t.tasksFailed) parts.push(`${t.tasksFailed} failed`);
  if (view.framesTotal !== null) parts.push(`${count(view.framesDone)}/${count(view.framesTotal)} frames`);
  if (view.framesPerSecond > 0) parts.push(`${view.framesPerSecond.toFixed(0)} frames/s`);
  const eta = view.etaSeconds ?? taskEta;
  parts.push(`ETA ${eta === undefined ? '?' : formatDuration(eta)}`);
  const devices = view.devices.map(deviceSummary);
  return parts.join(', ') + (devices.length ? ` | ${devices.join('; ')}` : '');
}

/** The per-device table of `virnucpro status`. */
export function deviceTable(view: RunView): string[] {
  const header = ['DEVICE', 'STATE', 'NOW', 'TASKS', 'FRAMES', 'FRAMES/S', 'GPU', 'MEMORY', 'ETA', 'RESTARTS'];
  const rows = view.devices.map((d) => [
    d.id,
    d.state,
    d.phase,
    String(d.tasksDone),
    count(d.framesDone),
    d.framesPerSecond === null ? '-' : d.framesPerSecond.toFixed(0),
    d.gpuUtilization === null ? '-' : `${Math.round(d.gpuUtilization * 100)}%`,
    formatBytes(d.gpuMemoryBytes),
    d.etaSeconds === null ? '-' : formatDuration(d.etaSeconds),
    String(d.restarts),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((row) => '  ' + row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
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
  let noticesSeen = 0;
  while (!closed) {
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    if (closed) break;
    let seen: Awaited<ReturnType<typeof snapshot>>;
    try {
      seen = await snapshot(handle);
    } catch (err) {
      logger.debug(`progress query failed: ${(err as Error).message}`);
      continue;
    }
    if (!seen) continue;
    // A device that stalled, was replaced or was taken out is said by name, once.
    for (const notice of seen.report.notices.slice(noticesSeen)) {
      if (options.enabled && tty) process.stderr.write('\r\x1b[K');
      logger.warn(notice.message, { device: notice.device, notice: notice.kind });
    }
    noticesSeen = Math.max(noticesSeen, seen.report.notices.length);
    const t = taskTotals(seen.report);
    const line = progressLine(seen.report, seen.view, eta.update(t.tasksDone, t.tasksTotal));
    if (options.enabled && tty) process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
    if (line !== lastLine && Date.now() - lastLineAt >= options.lineIntervalS * 1000) {
      // The run log gets the same periodic record whatever the terminal shows.
      logger.verbose('progress', {
        tasks_done: t.tasksDone,
        tasks_total: t.tasksTotal,
        frames_done: seen.view.framesDone,
        frames_total: seen.view.framesTotal,
        frames_per_s: seen.view.framesPerSecond,
        devices: seen.view.devices,
      });
      if (options.enabled && !tty) process.stderr.write(`progress: ${line}\n`);
      lastLineAt = Date.now();
      lastLine = line;
    }
  }
  if (options.enabled && tty) process.stderr.write('\r\x1b[K');
  return result;
}
