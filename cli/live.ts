// Live per-device figures of a run, from any host that can reach Temporal. Two sources:
// - the run's `progress` query: steps, and per device the tasks and frames already completed;
// - the run's pending activities (describe): each running task's latest heartbeat, which the
//   gpu step sends every few seconds (frames done, frames/s, GPU utilisation and memory). These
//   reach the server directly, not through the workflow's history, so they can be frequent.
import { defaultPayloadConverter } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import { progressQuery, type ProgressReport } from '../workflows/interpreter/messages';

/** A running task's latest heartbeat, as the gpu step writes it (activities/gpu/embed-shard.ts). */
export interface LiveTask {
  device: string | null;
  shard: string | null;
  phase: string | null;
  framesDone: number;
  framesTotal: number | null;
  framesPerSecond: number | null;
  gpuUtilization: number | null;
  gpuMemoryBytes: number | null;
  /** When the server last heard from the task. */
  heartbeatAt: Date | null;
  attempt: number;
}

export interface DeviceView {
  id: string;
  state: string;
  tasksDone: number;
  framesDone: number;
  /** Of the shard computing now (null while none computes). */
  framesPerSecond: number | null;
  gpuUtilization: number | null;
  gpuMemoryBytes: number | null;
  /** What the device does now: computing, loading, queued, idle. */
  phase: string;
  restarts: number;
  /** Seconds until this device's running and queued shards are done at its current rate (null when unknown). */
  etaSeconds: number | null;
}

export interface RunView {
  framesDone: number;
  framesTotal: number | null;
  framesPerSecond: number;
  /** Seconds left at the current rate (null when unknown). */
  etaSeconds: number | null;
  devices: DeviceView[];
}

function numberOr(value: unknown, fallback: number | null): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function timestampToDate(ts: { seconds?: unknown; nanos?: number | null } | null | undefined): Date | null {
  if (!ts || ts.seconds === undefined || ts.seconds === null) return null;
  return new Date(Number(ts.seconds) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));
}

/** The latest heartbeat of every running step of the run. */
export async function liveTasks(handle: WorkflowHandle): Promise<LiveTask[]> {
  const description = await handle.describe();
  const tasks: LiveTask[] = [];
  for (const pending of description.raw.pendingActivities ?? []) {
    const payload = pending.heartbeatDetails?.payloads?.[0];
    let details: Record<string, unknown> = {};
    try {
      const value = payload ? defaultPayloadConverter.fromPayload<unknown>(payload) : null;
      if (value && typeof value === 'object') details = value as Record<string, unknown>;
    } catch {
      // a heartbeat this version cannot read: shown without figures
    }
    tasks.push({
      device: typeof details.device === 'string' ? details.device : null,
      shard: typeof details.shard === 'string' ? details.shard : null,
      phase: typeof details.phase === 'string' ? details.phase : null,
      framesDone: numberOr(details.frames_done, 0)!,
      framesTotal: numberOr(details.frames_total, null),
      framesPerSecond: numberOr(details.frames_per_s, null),
      gpuUtilization: numberOr(details.gpu_utilization, null),
      gpuMemoryBytes: numberOr(details.gpu_memory_bytes, null),
      heartbeatAt: timestampToDate(pending.lastHeartbeatTime as { seconds?: unknown; nanos?: number } | null | undefined),
      attempt: pending.attempt ?? 1,
    });
  }
  return tasks;
}

/**
 * Per device: what is done (from the workflow) plus what its running shard has done so far. The
 * two sources are read one after the other, so a shard that just ended may count twice for a
 * moment; totals are capped at the step's total.
 */
export function runView(report: ProgressReport, tasks: LiveTask[], gpuStep = 'embed'): RunView {
  const inFlight = (t: LiveTask) => t.framesDone;
  const devices: DeviceView[] = Object.entries(report.devices).map(([id, device]) => {
    const mine = tasks.filter((t) => t.device === id);
    const computing = mine.find((t) => t.phase === 'computing');
    const live = computing ?? mine[0];
    const framesLeft = mine.reduce((sum, t) => sum + Math.max(0, (t.framesTotal ?? 0) - t.framesDone), 0);
    const rate = computing?.framesPerSecond ?? null;
    return {
      id,
      state: device.state,
      tasksDone: device.done,
      framesDone: device.unitsDone + mine.reduce((sum, t) => sum + inFlight(t), 0),
      framesPerSecond: computing?.framesPerSecond ?? null,
      gpuUtilization: live?.gpuUtilization ?? null,
      gpuMemoryBytes: live?.gpuMemoryBytes ?? null,
      phase: device.state !== 'active' ? device.state : (live?.phase ?? 'idle'),
      restarts: device.restarts,
      etaSeconds: rate !== null && rate > 0 ? framesLeft / rate : mine.length === 0 ? 0 : null,
    };
  });
  const step = report.steps[gpuStep];
  const framesTotal = step?.unitsTotal ?? null;
  const counted = (step?.unitsDone ?? 0) + tasks.filter((t) => t.device !== null).reduce((sum, t) => sum + inFlight(t), 0);
  const framesDone = framesTotal === null ? counted : Math.min(framesTotal, counted);
  const framesPerSecond = devices.reduce((sum, d) => sum + (d.framesPerSecond ?? 0), 0);
  const etaSeconds = framesTotal !== null && framesPerSecond > 0 ? (framesTotal - framesDone) / framesPerSecond : null;
  return { framesDone, framesTotal, framesPerSecond, etaSeconds, devices };
}

/** Progress query and live heartbeats together; null when no worker answers the query. */
export async function snapshot(handle: WorkflowHandle): Promise<{ report: ProgressReport; view: RunView } | null> {
  const [report, tasks] = await Promise.all([handle.query(progressQuery), liveTasks(handle).catch(() => [] as LiveTask[])]);
  return { report, view: runView(report, tasks) };
}
