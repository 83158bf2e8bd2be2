// How each device spent the run, from trace.tsv: its busy share of the embed step, the idle time
// between its shards, its peak memory. Shards served from the step cache (a resumed or repeated
// run) keep the times of the run that computed them: they ended before this run started, so they
// are counted apart (`shardsFromCache`) and left out of busy and idle figures and of the
// timeline, where the earlier run's downtime would otherwise show as idle time. Judged by the
// shard's end, not its start: a host whose clock runs a little behind the server's still ends
// its shards after the run started.
import type { TraceRow } from './trace';

export interface DeviceUse {
  /** Shards computed in this run, and shards taken from an earlier run's results. */
  shardsComputed: number;
  shardsFromCache: number;
  /** Summed duration of the shards computed in this run. */
  busySeconds: number;
  /** busySeconds over the span from the first computed shard's start to the last one's end (all devices). */
  busyFraction: number;
  /** Time between consecutive computed shards on this device. */
  idleGapsSeconds: number;
  peakMemoryBytes: number | null;
}

/** Whether a trace row was computed by the run that started at `runStart` (Unix ms; null: unknown, all are). */
export function computedInRun(row: TraceRow, runStart: number | null): boolean {
  return runStart === null || row.end > runStart;
}

export function deviceUse(trace: TraceRow[], runStart: number | null): Record<string, DeviceUse> {
  const computed = trace.filter((t) => computedInRun(t, runStart));
  const begin = Math.min(...computed.map((t) => t.start));
  const end = Math.max(...computed.map((t) => t.end));
  const out: Record<string, DeviceUse> = {};
  for (const device of new Set(trace.map((t) => t.device))) {
    const mine = computed.filter((t) => t.device === device).sort((a, b) => a.start - b.start);
    const busy = mine.reduce((sum, t) => sum + (t.end - t.start), 0);
    let gaps = 0;
    for (let i = 1; i < mine.length; i++) gaps += Math.max(0, mine[i].start - mine[i - 1].end);
    const peaks = mine.map((t) => t.peakMemoryBytes).filter((m): m is number => m !== null);
    out[device] = {
      shardsComputed: mine.length,
      shardsFromCache: trace.filter((t) => t.device === device).length - mine.length,
      busySeconds: busy / 1000,
      busyFraction: end > begin ? busy / (end - begin) : 0,
      idleGapsSeconds: gaps / 1000,
      peakMemoryBytes: peaks.length ? Math.max(...peaks) : null,
    };
  }
  return out;
}
