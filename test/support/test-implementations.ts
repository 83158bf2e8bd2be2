// Implementations for the interpreter and step tests' own small pipelines. They do real (if small) work and
// record what happened in a journal, so tests can check timing, devices and completions.
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineImplementation } from '../../activities/steps/implementation';

export interface JournalEntry {
  implementation: string;
  item: number | null;
  device: string | null;
  attempt: number;
  start: number;
  end: number;
  outcome: 'completed' | 'failed' | 'stalled';
}

export const journal: JournalEntry[] = [];

/** Sleep in slices, heartbeating after each, so cancellation and progress both work. */
async function busy(ms: number, signal: AbortSignal, heartbeat: (details: Record<string, unknown>) => void): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    await sleep(Math.min(50, ms - (Date.now() - started)), undefined, { signal });
    heartbeat({ elapsed_ms: Date.now() - started });
  }
}

const workParams = z.object({
  ms: z.number().default(0),
  /** device id -> how many times slower it works. */
  slowdown: z.record(z.string(), z.number()).default({}),
  /** This device stops heartbeating (hangs) for `stallMs` on its first task, then fails it. */
  stallDevice: z.string().nullable().default(null),
  stallMs: z.number().default(0),
  failItems: z.array(z.number()).default([]),
});

const stalled = new Set<string>();

/** Doubles a number after a (device-dependent) amount of work. */
export const work = defineImplementation({
  name: 'test.work',
  inputs: z.object({ n: z.number() }),
  outputs: z.object({ doubled: z.number() }),
  params: workParams,
  async run({ n }, ctx) {
    const entry: JournalEntry = { implementation: 'test.work', item: n, device: ctx.device, attempt: ctx.attempt, start: Date.now(), end: 0, outcome: 'failed' };
    journal.push(entry);
    try {
      // Once per device and work folder (i.e. per test run): the device's first task hangs.
      const stallKey = `${ctx.params.stallDevice}/${dirname(dirname(ctx.workDir))}`;
      if (ctx.device !== null && ctx.device === ctx.params.stallDevice && !stalled.has(stallKey)) {
        stalled.add(stallKey);
        entry.outcome = 'stalled';
        await sleep(ctx.params.stallMs);
        throw new Error('stalled device gave up');
      }
      if (ctx.params.failItems.includes(n)) throw new Error(`item ${n} is poisoned`);
      await busy(ctx.params.ms * (ctx.params.slowdown[ctx.device ?? ''] ?? 1), ctx.signal, (d) => ctx.heartbeat(d));
      entry.outcome = 'completed';
      return { doubled: 2 * n };
    } finally {
      entry.end = Date.now();
    }
  },
});

/** Lists 0..count-1: the thing a scatter fans out over. */
export const range = defineImplementation({
  name: 'test.range',
  inputs: z.object({ count: z.number().int() }),
  outputs: z.object({ numbers: z.array(z.number()) }),
  async run({ count }) {
    return { numbers: Array.from({ length: count }, (_, i) => i) };
  },
});

export const sum = defineImplementation({
  name: 'test.sum',
  inputs: z.object({ values: z.array(z.number()) }),
  outputs: z.object({ total: z.number() }),
  async run({ values }) {
    return { total: values.reduce((a, b) => a + b, 0) };
  },
});

export const add = defineImplementation({
  name: 'test.add',
  inputs: z.object({ a: z.number(), b: z.number() }),
  outputs: z.object({ total: z.number() }),
  async run({ a, b }) {
    return { total: a + b };
  },
});

export const testImplementations = [work, range, sum, add];
