/**
 * The prepare step as a step implementation (activities/steps): `prepareReads` in the step's own folder,
 * its progress as heartbeats, cancellation through the step's signal.
 */
import { ApplicationFailure } from '@temporalio/common';
import * as fs from 'node:fs';
import { z } from 'zod';
import { defineImplementation } from '../steps/implementation';
import { ReadInputError } from './errors';
import { prepareReads, prepareReadsOutput } from './prepare-reads';

export const prepareParams = z.strictObject({
  expectedLength: z.number().int().min(3).max(1_000_000),
  /** null: sized for the input (shard-size.ts). */
  shardFrames: z.number().int().min(1).max(10_000_000).nullable(),
});

/**
 * The read file as the run saw it when it started. Size and modification time (Nextflow's
 * default cache mode) are part of the step's cache key, so a file edited in place is prepared
 * again instead of being served from the cache, without hashing gigabytes up front.
 */
export const readsFingerprint = z.strictObject({
  path: z.string().min(1),
  bytes: z.number().int().nonnegative(),
  modified: z.number(),
});
export type ReadsFingerprint = z.infer<typeof readsFingerprint>;

export function fingerprintReads(path: string): ReadsFingerprint {
  const stat = fs.statSync(path);
  return { path, bytes: stat.size, modified: stat.mtimeMs };
}

export const prepareImplementation = defineImplementation({
  name: 'virnucpro.prepare',
  inputs: z.object({ reads: readsFingerprint }),
  outputs: prepareReadsOutput,
  params: prepareParams,
  async run({ reads }, ctx) {
    const now = fs.statSync(reads.path, { throwIfNoEntry: false });
    if (!now || now.size !== reads.bytes || now.mtimeMs !== reads.modified) {
      throw ApplicationFailure.nonRetryable(
        `${reads.path}: the read file ${now ? 'changed' : 'disappeared'} after the run started; run the command again to start a run on its current content`,
        'ReadInputError',
      );
    }
    let warnings = 0;
    try {
      return await prepareReads(
        { input: reads.path, expectedLength: ctx.params.expectedLength, workDir: ctx.workDir, shardFrames: ctx.params.shardFrames },
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
