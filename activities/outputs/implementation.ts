// The pipeline's gather step: all shard results in shard order -> the run's result files in the
// user's output folder (not the step folder: these are the deliverables). It always runs (the
// process has cache: false): it is cheap, and the output folder is the user's to change.
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { z } from 'zod';
import { assertFileIntact } from '../steps/files';
import { defineImplementation, fileRef } from '../steps/implementation';
import { shardResult, type ShardResult } from '../gpu/embed-shard';
import { ID_MAP_FILE } from '../prepare/id-map';
import { writePredictionOutputs } from './prediction-outputs';
import { writeTelemetry, writeTrace } from './trace';
import { OutputWriteError } from './text-file-writer';
import { ApplicationFailure } from '@temporalio/common';

export const WRITE_OUTPUTS = 'virnucpro.write-outputs';

/** A delivered file. Deliberately not a FileRef (`file`, not `path`): it has no `.done` marker. */
export const deliveredFile = z.strictObject({ file: z.string(), rows: z.number().int(), bytes: z.number().int(), sha256: z.string() });

export const deviceThroughput = z.strictObject({
  shards: z.number().int(),
  frames: z.number().int(),
  seconds: z.number(),
  esm2Tokens: z.number().int(),
  dnabertTokens: z.number().int(),
  restarts: z.number().int(),
});

export const outputsSummary = z.strictObject({
  files: z.array(deliveredFile),
  frames: z.number().int(),
  chunks: z.number().int(),
  virusChunks: z.number().int(),
  records: z.number().int(),
  calls: z.strictObject({ virus: z.number().int(), others: z.number().int(), no_frames: z.number().int() }),
  scoreHistogram: z.array(z.number().int()),
  devices: z.record(z.string(), deviceThroughput),
});
export type OutputsSummary = z.infer<typeof outputsSummary>;

async function copyAtomic(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await copyFile(from, tmp);
    await rename(tmp, to);
  } catch (error) {
    await rm(tmp, { force: true });
    throw new OutputWriteError(to, (error as NodeJS.ErrnoException).code, error);
  }
}

/** All shard results in shard order: the imported ones where they are, the computed ones (in
 * the order the device step was given the rest) in the gaps. */
function inShardOrder(imported: Array<ShardResult | null>, computed: ShardResult[]): ShardResult[] {
  const gaps = imported.filter((r) => r === null).length;
  if (gaps !== computed.length) throw ApplicationFailure.nonRetryable(`${computed.length} computed shard results for ${gaps} shards left to compute`);
  let next = 0;
  return imported.map((r) => r ?? computed[next++]);
}

/** What each device delivered: its shards, frames, seconds, tokens and runtime restarts. */
export function deliveredByDevice(results: readonly ShardResult[]): OutputsSummary['devices'] {
  const devices: OutputsSummary['devices'] = {};
  for (const r of results) {
    const d = (devices[r.device] ??= { shards: 0, frames: 0, seconds: 0, esm2Tokens: 0, dnabertTokens: 0, restarts: 0 });
    d.shards += 1;
    d.frames += r.frames;
    d.seconds += r.seconds;
    d.esm2Tokens += r.esm2Tokens;
    d.dnabertTokens += r.dnabertTokens;
    d.restarts += r.restarts;
  }
  return devices;
}

export const writeOutputsImplementation = defineImplementation({
  name: WRITE_OUTPUTS,
  inputs: z.object({
    records: fileRef,
    results: z.array(shardResult),
    idMap: fileRef.optional(),
    /** With an import step: per shard its imported result, or null where `results` has it next. */
    imported: z.array(shardResult.nullable()).optional(),
  }),
  outputs: z.object({ summary: outputsSummary }),
  params: z.strictObject({ outDir: z.string().min(1), synthetic: z.enum(['tiny', 'full']).nullable() }),
  async run({ records, results: computed, idMap, imported }, ctx) {
    const results = imported ? inShardOrder(imported, computed) : computed;
    await assertFileIntact(records);
    for (const result of results) await assertFileIntact(result.file);
    await mkdir(ctx.params.outDir, { recursive: true });
    ctx.heartbeat({ phase: 'writing outputs' });
    try {
      const written = await writePredictionOutputs({
        recordsPath: records.path,
        resultPaths: results.map((r) => r.file.path),
        outDir: ctx.params.outDir,
        synthetic: ctx.params.synthetic,
      });
      const files = written.files.map((f) => ({ file: f.path, rows: f.rows, bytes: f.bytes, sha256: f.sha256 }));
      files.push(await writeTrace(ctx.params.outDir, results, ctx.params.synthetic), await writeTelemetry(ctx.params.outDir, results, ctx.params.synthetic));
      if (idMap) {
        const target = path.join(ctx.params.outDir, ID_MAP_FILE);
        await copyAtomic(idMap.path, target);
        files.push({ file: target, rows: idMap.rows, bytes: idMap.bytes, sha256: idMap.sha256 });
      }
      const { files: _, ...counts } = written;
      return { summary: { ...counts, files, devices: deliveredByDevice(results) } };
    } catch (error) {
      // A full disk or a read-only folder does not heal by retrying at once: fail with the reason.
      if (error instanceof OutputWriteError) throw ApplicationFailure.create({ type: 'OutputWriteError', message: error.message, nonRetryable: true });
      throw error;
    }
  },
});
