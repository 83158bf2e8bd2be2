// Implementations of the selftest pipeline (workflows/pipelines/selftest.ts): small, real work
// over files, so a cluster check exercises writing, checksums, heartbeats and cancellation.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineImplementation, fileRef } from '../steps/implementation';
import { assertFileIntact } from '../steps/files';

export const selftestSettings = z.strictObject({
  /** Number of files, i.e. gpu tasks. */
  files: z.number().int().min(1).max(100_000),
  /** 64-character lines per file. */
  lines: z.number().int().min(1).max(1_000_000).default(64),
  /** Extra rounds of hashing per file (cpu load on the "gpu" worker). */
  rounds: z.number().int().min(1).max(1_000_000).default(1),
  /** Sleep per gpu task, in slices with a heartbeat after each. */
  sleepMs: z.number().int().min(0).max(600_000).default(0),
  seed: z.string().default('virnucpro'),
});
export type SelftestSettings = z.input<typeof selftestSettings>;

const summary = z.strictObject({ files: z.number().int(), rows: z.number().int(), bytes: z.number().int() });

const HEARTBEAT_SLICE_MS = 200;

function pseudoRandomLines(seed: string, fileIndex: number, lines: number): string {
  const out: string[] = [];
  for (let line = 0; line < lines; line++) {
    out.push(createHash('sha256').update(`${seed}:${fileIndex}:${line}`).digest('hex'));
  }
  return out.join('\n') + '\n';
}

const generate = defineImplementation({
  name: 'selftest.generate',
  inputs: z.object({ settings: selftestSettings }),
  outputs: z.object({ files: z.array(fileRef) }),
  async run({ settings }, ctx) {
    const files = [];
    for (let i = 0; i < settings.files; i++) {
      const name = `file-${String(i).padStart(5, '0')}.txt`;
      files.push(await ctx.writeFile(name, pseudoRandomLines(settings.seed, i, settings.lines), settings.lines));
      if (i % 100 === 0) ctx.heartbeat({ files_written: i + 1 });
    }
    return { files };
  },
});

const digest = defineImplementation({
  name: 'selftest.digest',
  inputs: z.object({ file: fileRef, settings: selftestSettings }),
  outputs: z.object({ digest: fileRef }),
  async run({ file, settings }, ctx) {
    await assertFileIntact(file);
    let value = await readFile(file.path);
    for (let round = 0; round < settings.rounds; round++) {
      value = createHash('sha256').update(value).digest();
    }
    const started = Date.now();
    for (let slept = 0; slept < settings.sleepMs; slept += HEARTBEAT_SLICE_MS) {
      await sleep(Math.min(HEARTBEAT_SLICE_MS, settings.sleepMs - slept), undefined, { signal: ctx.signal });
      ctx.heartbeat({ slept_ms: Date.now() - started, device: ctx.device });
    }
    const name = `digest-${basename(file.path)}`;
    return { digest: await ctx.writeFile(name, `${value.toString('hex')}  ${basename(file.path)}\n`, 1) };
  },
});

const measure = defineImplementation({
  name: 'selftest.measure',
  inputs: z.object({ files: z.array(fileRef) }),
  outputs: z.object({ summary }),
  async run({ files }) {
    for (const file of files) await assertFileIntact(file);
    return {
      summary: {
        files: files.length,
        rows: files.reduce((sum, f) => sum + f.rows, 0),
        bytes: files.reduce((sum, f) => sum + f.bytes, 0),
      },
    };
  },
});

const combine = defineImplementation({
  name: 'selftest.combine',
  inputs: z.object({ digests: z.array(fileRef), summary }),
  outputs: z.object({ report: fileRef }),
  async run({ digests, summary }, ctx) {
    const lines = [];
    for (const digestFile of digests) {
      await assertFileIntact(digestFile);
      lines.push((await readFile(digestFile.path, 'utf8')).trimEnd());
    }
    const report = { ...summary, digests: lines };
    return { report: await ctx.writeFile('report.json', JSON.stringify(report, null, 2) + '\n', lines.length) };
  },
});

export const selftestImplementations = [generate, digest, measure, combine];
