/**
 * The prepare step as an engine implementation: `prepareReads` in the step's own folder,
 * its progress as heartbeats, cancellation through the step's signal.
 */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { defineImplementation } from '../engine/implementation';
import { ReadInputError } from './errors';
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
    let warnings = 0;
    try {
      return await prepareReads(
        { input: reads, expectedLength: ctx.params.expectedLength, workDir: ctx.workDir, shardFrames: ctx.params.shardFrames },
        {
          onProgress: (progress) => ctx.heartbeat({ ...progress, warnings }),
          warn: (message) => {
            warnings++;
            ctx.heartbeat({ warning: message });
          },
          signal: ctx.signal,
        },
      );
    } catch (err) {
      // A bad read file stays bad: fail the run now with the message instead of retrying.
      if (err instanceof ReadInputError) throw ApplicationFailure.nonRetryable(err.message, 'ReadInputError');
      throw err;
    }
  },
});
