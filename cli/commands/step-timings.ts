// Per-step timings of a finished run, read from its workflow history (the interpreter's progress
// report counts tasks but keeps no times): for each process, the span from its first task start
// to its last completion, and the summed task durations (busy time across devices).
import type { WorkflowHandle } from '@temporalio/client';

export interface StepTiming {
  /** First task start to last task completion. */
  wallSeconds: number;
  /** Sum of task durations (exceeds the wall time when tasks ran in parallel). */
  busySeconds: number;
  /** Unix ms of the first task start and the last completion. */
  firstStart: number;
  lastEnd: number;
  /** Attempts that failed, or timed out (a lost heartbeat: a stalled device or a lost worker). */
  failedAttempts: number;
  timedOutAttempts: number;
}

interface Timestamp {
  seconds?: number | { toNumber(): number } | null;
  nanos?: number | null;
}

function toMs(time: Timestamp | null | undefined): number | null {
  if (!time) return null;
  const seconds = typeof time.seconds === 'number' ? time.seconds : time.seconds ? time.seconds.toNumber() : 0;
  return seconds * 1000 + (time.nanos ?? 0) / 1e6;
}

/** The `process` of a step task (the activity's JSON input). */
function processOf(payload: { data?: Uint8Array | null } | undefined): string | null {
  if (!payload?.data) return null;
  try {
    const task = JSON.parse(Buffer.from(payload.data).toString('utf8')) as { process?: unknown };
    return typeof task.process === 'string' ? task.process : null;
  } catch {
    return null;
  }
}

export async function stepTimings(handle: WorkflowHandle): Promise<Record<string, StepTiming>> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  const started = new Map<string, number>();
  const spans = new Map<string, { first: number; last: number; busy: number; failed: number; timedOut: number }>();
  const span = (process: string, begin: number, end: number) => spans.get(process) ?? { first: begin, last: end, busy: 0, failed: 0, timedOut: 0 };
  for (const event of history.events ?? []) {
    const at = toMs(event.eventTime as Timestamp);
    const id = String(event.eventId);
    const s = event.activityTaskScheduledEventAttributes;
    if (s) {
      const process = processOf(s.input?.payloads?.[0] ?? undefined);
      if (process) scheduled.set(id, process);
    }
    const st = event.activityTaskStartedEventAttributes;
    if (st && at !== null) started.set(String(st.scheduledEventId), at);
    const done = event.activityTaskCompletedEventAttributes;
    if (done && at !== null) {
      const key = String(done.scheduledEventId);
      const process = scheduled.get(key);
      const begin = started.get(key);
      if (!process || begin === undefined) continue;
      const s = span(process, begin, at);
      s.first = Math.min(s.first, begin);
      s.last = Math.max(s.last, at);
      s.busy += at - begin;
      spans.set(process, s);
    }
    const lost = event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
    if (lost && at !== null) {
      const process = scheduled.get(String(lost.scheduledEventId));
      if (!process) continue;
      const s = span(process, at, at);
      if (event.activityTaskTimedOutEventAttributes) s.timedOut += 1;
      else s.failed += 1;
      spans.set(process, s);
    }
  }
  return Object.fromEntries(
    [...spans].map(([process, s]) => [
      process,
      { wallSeconds: (s.last - s.first) / 1000, busySeconds: s.busy / 1000, firstStart: s.first, lastEnd: s.last, failedAttempts: s.failed, timedOutAttempts: s.timedOut },
    ]),
  );
}
