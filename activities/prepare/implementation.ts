/**
 * The prepare step as an engine implementation: `prepareReads` in the step's own folder,
 * its progress as heartbeats, cancellation through the step's signal.
 */
import { z } from 'zod';
import { defineImplementation } from '../engine/implementation';
import { DEFAULT_SHARD_FRAMES, prepareReads, prepareReadsOutput } from './prepare-activity';

export const prepareParams = z.strictObject({
  expectedLength: z.number().int().min(3).max(1_000_000),
  shardFrames: z.number().int().min(1).max(10_000_000).default(DEFAULT_SHARD_FRAMES),
});

export const prepareImplementation = defineImplementation({
  name: 'virnucpro.prepare',
  inputs: z.object({ reads: z.string().min(1) }),
  outputs: prepareReadsOutput,
  params: prepareParams,
  async run({ reads }, ctx) {
    const warnings: string[] = [];
    return prepareReads(
      { input: reads, expectedLength: ctx.params.expectedLength, workDir: ctx.workDir, shardFrames: ctx.params.shardFrames },
      {
        onProgress: (progress) => ctx.heartbeat({ ...progress, warnings: warnings.length }),
        warn: (message) => {
          warnings.push(message);
          ctx.heartbeat({ warning: message });
        },
        signal: ctx.signal,
      },
    );
  },
});
