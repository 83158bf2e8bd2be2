// How many frames a shard holds when the user does not say (--shard-frames): about SHARDS_PER_RUN
// shards per input, so that at the end of a run the last shards are small next to the run and
// devices of any mix of speeds finish together (bench/balance: 8 devices of 1-4x speed finish
// within ~1% of the run with ~800 shards, against ~4% with 200), within bounds that keep a
// shard worth a GPU's while (at least ~9 s on an H200) and the run's shard list small enough
// for Temporal's history (at most ~2,000 shards for the largest samples).
// The frame count is estimated from the file before reading it: its size, its compression and
// whether it is FASTQ. A wrong guess only makes the shards larger or smaller.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { detectCompression } from './decompress';

export const SHARDS_PER_RUN = 800;
export const MIN_SHARD_FRAMES = 5_000;
export const MAX_SHARD_FRAMES = 50_000;

/** Typical decompressed-to-compressed size ratios of sequence files. */
const EXPANSION = { none: 1, gzip: 3.5, bzip2: 4.2, xz: 4.5 } as const;
/** Kept (stop-free) frames per chunk of real reads (of its six frames, about one survives on coding DNA). */
const FRAMES_PER_CHUNK = 0.6;

export function shardFramesFor(estimatedFrames: number): number {
  return Math.round(Math.min(MAX_SHARD_FRAMES, Math.max(MIN_SHARD_FRAMES, estimatedFrames / SHARDS_PER_RUN)));
}

/** Roughly how many frames `path` will give at chunk length `chunkLength`. */
export function estimateFrames(path: string, chunkLength: number): number {
  const size = statSync(path).size;
  const head = Buffer.alloc(8);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const compression = detectCompression(head, path);
  const bytes = size * EXPANSION[compression];
  // FASTQ carries a quality line as long as the sequence; FASTA mostly sequence.
  const fastq = compression === 'none' ? head[0] === 0x40 /* @ */ : /\.f(ast)?q(\.|$)/i.test(path);
  const bases = bytes * (fastq ? 0.45 : 0.97);
  return (bases / chunkLength) * FRAMES_PER_CHUNK;
}
