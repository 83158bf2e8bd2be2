// The pipeline's gpu step: one frame shard in, one shard result file out, computed by the
// device's resident runtime. Progress events become activity heartbeats; cancellation (or a lost
// heartbeat) becomes a protocol `cancel`. Errors that no retry can fix (bad input, unusable
// weights) are marked non-retryable so the run fails at once with the runtime's own message.
import { ApplicationFailure } from '@temporalio/common';
import * as path from 'node:path';
import { z } from 'zod';
import { assertFileIntact } from '../engine/files';
import { defineImplementation, fileRef } from '../engine/implementation';
import { ProgressEvent } from './protocol';
import { runtimeFor } from './resident-runtime';
import { RuntimeFailure } from './runtime-process';

export const EMBED_SHARD = 'gpu.embed-classify';

export const modelParams = z.strictObject({
  synthetic: z.enum(['tiny', 'full']).nullable(),
  esm2: z.string().nullable(),
  dnabert: z.string().nullable(),
  classifier: z.string().nullable(),
  dtype: z.enum(['bfloat16', 'float32']).nullable(),
  tokenBudget: z.number().int().positive().nullable(),
  embeddings: z.boolean(),
});
export type ModelParams = z.infer<typeof modelParams>;

/** What one shard cost, carried to the run report (throughput per device). */
export const shardResult = z.strictObject({
  file: fileRef,
  device: z.string(),
  frames: z.number().int().nonnegative(),
  seconds: z.number().nonnegative(),
  esm2Tokens: z.number().int().nonnegative(),
  dnabertTokens: z.number().int().nonnegative(),
  restarts: z.number().int().nonnegative(),
});
export type ShardResult = z.infer<typeof shardResult>;

const NOT_RETRYABLE = new Set(['bad_request', 'input', 'weights', 'protocol']);

function heartbeatDetails(event: ProgressEvent): Record<string, unknown> {
  return {
    frames_done: event.frames_done,
    frames_total: event.frames_total,
    frames_per_s: event.frames_per_s,
    tokens_per_s: event.tokens_per_s,
    gpu_memory_bytes: event.gpu_memory_bytes,
    gpu_utilization: event.gpu_utilization,
  };
}

export const embedShard = defineImplementation({
  name: EMBED_SHARD,
  inputs: z.object({ shard: fileRef }),
  outputs: z.object({ result: shardResult }),
  params: modelParams,
  async run({ shard }, ctx) {
    if (!ctx.device) throw ApplicationFailure.nonRetryable(`${EMBED_SHARD} must run on a device queue (resource: gpu)`);
    await assertFileIntact(shard);
    const runtime = runtimeFor(ctx.device);
    const out = path.join(ctx.workDir, `results-${path.basename(shard.path, '.arrow').replace(/^frames-/, '')}.arrow`);
    const p = ctx.params;
    try {
      const result = await runtime.run(
        {
          esm2: p.esm2,
          dnabert: p.dnabert,
          classifier: p.classifier,
          synthetic: p.synthetic,
          dtype: p.dtype,
          token_budget: p.tokenBudget,
        },
        { shard: shard.path, out, embeddings: p.embeddings },
        {
          onProgress: (event) => ctx.heartbeat(heartbeatDetails(event)),
          onWaiting: (phase) => ctx.heartbeat({ phase, frames_done: 0, frames_total: shard.rows }),
          signal: ctx.signal,
        },
      );
      if (result.frames !== shard.rows) {
        throw ApplicationFailure.nonRetryable(`runtime scored ${result.frames} frames of ${shard.path}, which has ${shard.rows}`);
      }
      ctx.heartbeat({ frames_done: result.frames, frames_total: shard.rows });
      return {
        result: {
          file: await ctx.adoptFile(out, result.frames),
          device: ctx.device,
          frames: result.frames,
          seconds: result.seconds,
          esm2Tokens: result.esm2_tokens,
          dnabertTokens: result.dnabert_tokens,
          restarts: result.restarts,
        },
      };
    } catch (error) {
      if (error instanceof RuntimeFailure) {
        const message = `runtime on ${ctx.device} (${shard.path}): ${error.message}`;
        if (NOT_RETRYABLE.has(error.type)) throw ApplicationFailure.create({ type: `runtime.${error.type}`, message, nonRetryable: true });
        throw ApplicationFailure.create({ type: `runtime.${error.type}`, message });
      }
      throw error;
    }
  },
});
