// The pipeline's import step (only in runs that found an earlier tool's folders, predict
// --resume): the embeddings the original VirNucPro or the multi-GPU fork already computed for
// this input go into the frame shards (the runtime then computes only the rest), shards with both
// embeddings for every frame are classified here, and the report says what came from which file.
// The checks and the reading are the Python runtime's (`python -m virnucpro_runtime import-legacy`,
// gpu-runtime/virnucpro_runtime/legacy.py): no pickled code is ever run.
import { ApplicationFailure } from '@temporalio/common';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { assertFileIntact } from '../steps/files';
import { defineImplementation, fileRef, type FileRef } from '../steps/implementation';
import { defaultPython } from '../gpu/runtime-process';
import { shardResult, type ShardResult } from '../gpu/embed-shard';
import { legacyRun } from './sources';

export const IMPORT_LEGACY = 'virnucpro.import-legacy';
/** The device name of shards classified from imported embeddings alone. */
export const IMPORTED_DEVICE = 'imported';

export const importParams = z.strictObject({
  runs: z.array(legacyRun),
  expectedLength: z.number().int().positive(),
  /** The classifier for shards whose frames all have both embeddings imported. */
  classifier: z.string().min(1).nullable(),
  synthetic: z.enum(['tiny', 'full']).nullable(),
  embeddings: z.boolean(),
  /** Whether ESM-2 and DNABERT-S weights were found, so that missing frames can be computed. */
  canCompute: z.boolean(),
});
export type ImportParams = z.infer<typeof importParams>;

const fileVerdict = z.strictObject({
  path: z.string(),
  models: z.array(z.enum(['dnabert', 'esm2'])),
  frames: z.number().int().nonnegative(),
  used: z.boolean(),
  problem: z.string().nullable(),
});

export const legacyReport = z.strictObject({
  files: z.array(fileVerdict),
  /** Folder-wide reasons to use none of a folder's files. */
  folders: z.array(z.strictObject({ folder: z.string(), problem: z.string() })),
  frames: z.number().int().nonnegative(),
  imported: z.strictObject({ dnabert: z.number().int().nonnegative(), esm2: z.number().int().nonnegative() }),
  /** Shards scored here from imported embeddings alone (no model ran for them). */
  shardsComplete: z.number().int().nonnegative(),
});
export type LegacyReport = z.infer<typeof legacyReport>;

const written = z.strictObject({ path: z.string(), rows: z.number().int(), bytes: z.number().int(), sha256: z.string() });
const reply = z.strictObject({
  files: z.array(fileVerdict),
  folders: z.array(z.strictObject({ folder: z.string(), problem: z.string() })),
  shards: z.array(
    z.strictObject({
      rows: z.number().int(),
      imported: z.strictObject({ dnabert: z.number().int(), esm2: z.number().int() }),
      frames: written.nullable(),
      result: written.extend({ seconds: z.number() }).nullable(),
    }),
  ),
});

export const importLegacy = defineImplementation({
  name: IMPORT_LEGACY,
  inputs: z.object({ shards: z.array(fileRef) }),
  outputs: z.object({
    /** The shards a device still has to compute (some with imported columns), in shard order. */
    shards: z.array(fileRef),
    /** Per input shard: its result when it was scored here, else null (computed by a device). */
    imported: z.array(shardResult.nullable()),
    report: legacyReport,
  }),
  params: importParams,
  async run({ shards }, ctx) {
    for (const shard of shards) await assertFileIntact(shard);
    const request = path.join(ctx.workDir, 'request.json');
    await writeFile(
      request,
      JSON.stringify({
        shards: shards.map((s) => s.path),
        runs: ctx.params.runs,
        expected_length: ctx.params.expectedLength,
        out_dir: ctx.workDir,
        classifier: ctx.params.classifier,
        synthetic: ctx.params.synthetic,
        embeddings: ctx.params.embeddings,
      }),
    );
    const answer = reply.parse(await runImport(request, ctx.heartbeat, ctx.signal));
    const toCompute: FileRef[] = [];
    const imported: Array<ShardResult | null> = [];
    const missing = { dnabert: 0, esm2: 0 };
    for (const [i, shard] of answer.shards.entries()) {
      missing.dnabert += shard.rows - shard.imported.dnabert;
      missing.esm2 += shard.rows - shard.imported.esm2;
      if (shard.result) {
        const now = Date.now();
        imported.push({
          file: await ctx.adoptFile(shard.result.path, shard.result.rows, shard.result),
          device: IMPORTED_DEVICE,
          attempt: ctx.attempt,
          frames: shard.rows,
          seconds: shard.result.seconds,
          esm2Tokens: 0,
          dnabertTokens: 0,
          restarts: 0,
          startedAt: now,
          finishedAt: now,
          oomRetries: 0,
          peakMemoryBytes: null,
          numerics: IMPORTED_DEVICE,
        });
        continue;
      }
      imported.push(null);
      toCompute.push(shard.frames ? await ctx.adoptFile(shard.frames.path, shard.frames.rows, shard.frames) : shards[i]);
    }
    const frames = answer.shards.reduce((sum, s) => sum + s.rows, 0);
    const report: LegacyReport = {
      files: answer.files,
      folders: answer.folders,
      frames,
      imported: { dnabert: frames - missing.dnabert, esm2: frames - missing.esm2 },
      shardsComplete: imported.filter((r) => r !== null).length,
    };
    if (toCompute.length > 0 && !ctx.params.canCompute) {
      throw ApplicationFailure.nonRetryable(missingWeightsMessage(report, missing), 'LegacyImportError');
    }
    return { shards: toCompute, imported, report };
  },
});

function missingWeightsMessage(report: LegacyReport, missing: { dnabert: number; esm2: number }): string {
  const rejected = report.files.filter((f) => f.problem).slice(0, 5).map((f) => `  ${f.path}: ${f.problem}`);
  const folders = report.folders.map((f) => `  ${f.folder}: ${f.problem}`);
  return [
    `${missing.esm2.toLocaleString('en-US')} frames have no usable ESM-2 and ${missing.dnabert.toLocaleString('en-US')} no usable DNABERT-S embedding in the earlier run's files, and the model weights to compute them were not found.`,
    ...(rejected.length + folders.length > 0 ? ['Files not used:', ...folders, ...rejected] : []),
    'Give the weights (-p/--esm2-weights/--dnabert-weights or VIRNUCPRO_WEIGHTS) to compute what is missing.',
  ].join('\n');
}

/** Runs the Python import, heartbeating with its progress; its last stdout line is the reply. */
function runImport(request: string, heartbeat: (details: Record<string, unknown>) => void, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(defaultPython(), ['-m', 'virnucpro_runtime', 'import-legacy', request], { stdio: ['ignore', 'pipe', 'pipe'] });
    let last = '';
    const stderr: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      last = line;
      heartbeat({ phase: 'importing', line: line.slice(0, 200) });
    });
    createInterface({ input: child.stderr }).on('line', (line) => {
      stderr.push(line);
      if (stderr.length > 20) stderr.shift();
    });
    const keepalive = setInterval(() => heartbeat({ phase: 'importing' }), 5_000);
    const abort = () => child.kill('SIGKILL');
    signal.addEventListener('abort', abort, { once: true });
    child.on('error', (error) => reject(new Error(`could not start ${defaultPython()}: ${error.message}`)));
    child.on('exit', (code, killed) => {
      clearInterval(keepalive);
      signal.removeEventListener('abort', abort);
      if (code !== 0) return reject(new Error(`import-legacy exited ${killed ?? code}: ${stderr.join('\n')}`));
      try {
        resolve(JSON.parse(last));
      } catch {
        reject(new Error(`import-legacy gave no reply: ${stderr.join('\n')}`));
      }
    });
  });
}
