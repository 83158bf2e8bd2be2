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

// The end of a run is cut finer: its last shards halve in size down to TAIL_MIN_FRAMES, each size
// TAIL_REPEATS times (about one per device of an 8-GPU host), so that the last shards of devices
// of different speeds end close together (bench/balance: 8 devices of 1-4x speed on 500,000
// frames end 1.9% of the run apart instead of 6.7%, counting 0.6 s per shard). The tail holds at
// most TAIL_MAX_FRAMES, which prepare keeps in memory until it knows where the input ends.
export const TAIL_MIN_FRAMES = 1_000;
const TAIL_REPEATS = 8;
const TAIL_MAX_FRAMES = 100_000;

/** The sizes of the tail shards for full shards of `shardFrames`, largest first. */
export function tailPlan(shardFrames: number): number[] {
  const repeats = Math.max(2, Math.min(TAIL_REPEATS, Math.floor(TAIL_MAX_FRAMES / shardFrames)));
  const sizes: number[] = [];
  for (let size = Math.round(shardFrames / 2); ; size = Math.round(size / 2)) {
    const step = Math.max(TAIL_MIN_FRAMES, size);
    if (step >= shardFrames) break;
    for (let i = 0; i < repeats; i++) sizes.push(step);
    if (step === TAIL_MIN_FRAMES) break;
  }
  return sizes;
}

/** How `frames` frames are cut into shards of `shardFrames` with the tail of `tailPlan`: full
 * shards, one shorter shard where the remainder does not fill one, then as much of the tail
 * (its smallest end) as the frames allow. */
export function shardSizes(frames: number, shardFrames: number): number[] {
  const tail = tailPlan(shardFrames);
  let used = tail.length;
  let inTail = tailFrames(shardFrames);
  while (used > 0 && inTail > frames) inTail -= tail[tail.length - used--];
  const head = frames - inTail;
  const sizes = [...Array.from({ length: Math.floor(head / shardFrames) }, () => shardFrames), ...(head % shardFrames ? [head % shardFrames] : [])];
  return [...sizes, ...tail.slice(tail.length - used)];
}

/** The most frames the tail can hold (what prepare keeps back until the input ends). */
export function tailFrames(shardFrames: number): number {
  return tailPlan(shardFrames).reduce((a, b) => a + b, 0);
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
