// The pipeline's gpu step: one frame shard in, one shard result file out, computed by the
// device's resident runtime. Progress events become activity heartbeats; cancellation (or a lost
// heartbeat) becomes a protocol `cancel`. Errors that no retry can fix (bad input, unusable
// weights) are marked non-retryable so the run fails at once with the runtime's own message.
import { ApplicationFailure } from '@temporalio/common';
import * as path from 'node:path';
import { z } from 'zod';
import { assertFileIntact } from '../steps/files';
import { defineImplementation, fileRef } from '../steps/implementation';
import { loadArgs, ProgressEvent } from './protocol';
import { runtimeFor } from './resident-runtime';
import { RuntimeFailure } from './runtime-process';
import { DEVICE_STALLED } from '../../workflows/interpreter/messages';

export const EMBED_SHARD = 'gpu.embed-classify';

/** The step's parameters: what the runtime loads (sent to it as they are) and what it keeps. */
export const embedParams = z.strictObject({
  model: loadArgs,
  /** The weight files' sizes and modification times: not used here, but part of the cache key. */
  weightFiles: z.array(z.strictObject({ path: z.string(), bytes: z.number().int().nonnegative(), modified: z.number() })),
  /** Also keep the 768 + 2560 embeddings in the shard results. */
  embeddings: z.boolean(),
});
export type EmbedParams = z.infer<typeof embedParams>;

/** What one shard cost and how it was computed, carried to the run report and trace. */
export const shardResult = z.strictObject({
  file: fileRef,
  device: z.string(),
  attempt: z.number().int().positive(),
  frames: z.number().int().nonnegative(),
  seconds: z.number().nonnegative(),
  esm2Tokens: z.number().int().nonnegative(),
  dnabertTokens: z.number().int().nonnegative(),
  restarts: z.number().int().nonnegative(),
  /** Wall clock (Unix ms) of the first batch on the device and of the shard's end. */
  startedAt: z.number(),
  finishedAt: z.number(),
  oomRetries: z.number().int().nonnegative(),
  peakMemoryBytes: z.number().int().nullable(),
  /** The runtime's numerics id: shards with equal ids were computed the same way. */
  numerics: z.string(),
});
export type ShardResult = z.infer<typeof shardResult>;

const NOT_RETRYABLE = new Set(['bad_request', 'input', 'weights', 'protocol']);

export const embedShard = defineImplementation({
  name: EMBED_SHARD,
  inputs: z.object({ shard: fileRef }),
  outputs: z.object({ result: shardResult }),
  params: embedParams,
  // The runtime computes one shard at a time and reads and tokenises the next queued one meanwhile.
  queuesOnDevice: true,
  async run({ shard }, ctx) {
    if (!ctx.device) throw ApplicationFailure.nonRetryable(`${EMBED_SHARD} must run on a device queue (resource: gpu)`);
    await assertFileIntact(shard);
    const runtime = runtimeFor(ctx.device);
    const name = path.basename(shard.path, '.arrow').replace(/^frames-/, '');
    const out = path.join(ctx.workDir, `results-${name}.arrow`);
    const about = { device: ctx.device, shard: name, frames_total: shard.rows };
    try {
      const result = await runtime.run(
        ctx.params.model,
        { shard: shard.path, out, embeddings: ctx.params.embeddings },
        {
          onProgress: (event: ProgressEvent) => ctx.heartbeat({ ...about, ...progressDetails(event) }),
          onWaiting: (phase) => ctx.heartbeat({ ...about, phase, frames_done: 0 }),
          // The device's next shard may go to the runtime now, to be read and tokenised meanwhile.
          onSent: () => ctx.queuedOnDevice(),
          signal: ctx.signal,
        },
      );
      if (result.frames !== shard.rows) {
        throw ApplicationFailure.nonRetryable(`runtime scored ${result.frames} frames of ${shard.path}, which has ${shard.rows}`);
      }
      ctx.heartbeat({ ...about, phase: 'done', frames_done: result.frames });
      return {
        result: {
          file: await ctx.adoptFile(out, result.frames, { sha256: result.sha256, bytes: result.bytes }),
          device: ctx.device,
          attempt: ctx.attempt,
          frames: result.frames,
          seconds: result.seconds,
          esm2Tokens: result.esm2_tokens,
          dnabertTokens: result.dnabert_tokens,
          restarts: result.restarts,
          startedAt: Math.round(result.started_at * 1000),
          finishedAt: Math.round(result.finished_at * 1000),
          oomRetries: result.oom_retries,
          peakMemoryBytes: result.peak_memory_bytes,
          numerics: result.numerics,
        },
      };
    } catch (error) {
      if (error instanceof RuntimeFailure) {
        const message = `runtime on ${ctx.device} (${shard.path}): ${error.message}`;
        if (error.type === 'stalled') throw ApplicationFailure.create({ type: DEVICE_STALLED, message });
        if (NOT_RETRYABLE.has(error.type)) throw ApplicationFailure.create({ type: `runtime.${error.type}`, message, nonRetryable: true });
        throw ApplicationFailure.create({ type: `runtime.${error.type}`, message });
      }
      throw error;
    }
  },
});

function progressDetails(event: ProgressEvent): Record<string, unknown> {
  return {
    phase: 'computing',
    frames_done: event.frames_done,
    frames_per_s: event.frames_per_s,
    tokens_per_s: event.tokens_per_s,
    gpu_memory_bytes: event.gpu_memory_bytes,
    gpu_utilization: event.gpu_utilization,
  };
}
