/**
 * `prepareReads`: the work of the pipeline's first step (implementation.ts runs it as the
 * step). Reads, chunks and translates the input and writes the kept frames as Arrow shards of
 * `shardFrames` rows, the records table and, when ids had to be renamed, an id map; every file
 * atomically with its `.done` marker.
 *
 * Resumable at shard granularity: preparation is deterministic, so a shard whose file
 * already exists with a valid marker and exactly the bytes this run would write is kept
 * as it is. Recomputing the frames is cheap next to the GPU work downstream; what a rerun
 * saves is rewriting (and invalidating) shards other steps may already have used.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RecordBatchFileWriter } from 'apache-arrow';
import { z } from 'zod';
import { readValidMarker, writeDoneMarker, writeFileAtomic } from '../files/atomic';
import { fileRef, type FileRef } from '../steps/implementation';
import { FrameColumns, recordsBatch } from './arrow-tables';
import { ReadInputError } from './errors';
import { chunkRecords, emptyStats, type ReadRecord, type Warn } from './chunk-stream';
import { ID_MAP_FILE, writeIdMap } from './id-map';
import { readSequences } from './sequence-reader';
import { SixFrameTranslator, type FrameName } from './translation';
import { estimateFrames, shardFramesFor, shardSizes, tailFrames } from './shard-size';


/** Records per Arrow batch of the records table (it is streamed, never held whole). */
const RECORDS_BATCH = 10_000;
const PROGRESS_EVERY_CHUNKS = 20_000;

export const prepareReadsInput = z.strictObject({
  /** FASTA or FASTQ, plain or gzip/bzip2/xz compressed. */
  input: z.string().min(1),
  /** Chunk length C: 300 or 500 for the published models; other lengths for custom ones. */
  expectedLength: z.number().int().min(3).max(1_000_000),
  /** Folder for the shards, records table and id map; created if missing. */
  workDir: z.string().min(1),
  /** Frames per shard, the unit a device computes and the cache keeps; absent: shard-size.ts's estimate for the input. */
  shardFrames: z.number().int().min(1).max(10_000_000).nullish(),
});
export type PrepareReadsInput = z.input<typeof prepareReadsInput>;

export const prepareStats = z.strictObject({
  records: z.number().int().nonnegative(),
  skippedEmpty: z.number().int().nonnegative(),
  duplicates: z.number().int().nonnegative(),
  chunks: z.number().int().nonnegative(),
  frames: z.number().int().nonnegative(),
  bases: z.number().int().nonnegative(),
});

export const prepareReadsOutput = z.strictObject({
  /** `frames-NNNNN.arrow` in order; `rows` is the shard's frame count. */
  shards: z.array(fileRef),
  /** `records.arrow`, one row per kept record. */
  records: fileRef,
  /** `id_map.tsv` (id-map.ts), only when ids were renamed. */
  idMap: fileRef.optional(),
  /** Shards found complete from an earlier attempt and kept. */
  reusedShards: z.number().int().nonnegative(),
  stats: prepareStats,
});
export type PrepareReadsOutput = z.infer<typeof prepareReadsOutput>;

export interface PrepareProgress {
  records: number;
  chunks: number;
  frames: number;
  bases: number;
  shardsWritten: number;
}

export interface PrepareHooks {
  /** Called every few thousand chunks and after each shard; the activity turns it into heartbeats. */
  onProgress?(progress: PrepareProgress): void;
  /** Skipped records, renamed ids. */
  warn?: Warn;
  /** Stops between chunks with the signal's reason. */
  signal?: AbortSignal;
}

const FRAME_SUFFIX: Record<FrameName, Uint8Array> = {
  F1: Buffer.from('F1'),
  F2: Buffer.from('F2'),
  F3: Buffer.from('F3'),
  R1: Buffer.from('R1'),
  R2: Buffer.from('R2'),
  R3: Buffer.from('R3'),
};

export function shardFileName(index: number): string {
  return `frames-${String(index).padStart(5, '0')}.arrow`;
}

export async function prepareReads(rawInput: PrepareReadsInput, hooks: PrepareHooks = {}): Promise<PrepareReadsOutput> {
  const parsed = prepareReadsInput.parse(rawInput);
  const input = { ...parsed, shardFrames: parsed.shardFrames ?? shardFramesFor(estimateFrames(parsed.input, parsed.expectedLength)) };
  // Shards of the size we chose end in a finer tail (shard-size.ts): its frames are kept back
  // until the input ends. A size the user gave is kept exactly.
  const keepBack = parsed.shardFrames == null ? tailFrames(input.shardFrames) : 0;
  await mkdir(input.workDir, { recursive: true });
  const stats = emptyStats();
  const shards: FileRef[] = [];
  let reusedShards = 0;
  let columns = new FrameColumns();
  const renamed: ReadRecord[] = [];
  const records = new StreamedRecordsTable(join(input.workDir, 'records.arrow'));
  const progress = (): PrepareProgress => ({
    records: stats.records,
    chunks: stats.chunks,
    frames: stats.frames,
    bases: stats.bases,
    shardsWritten: shards.length,
  });

  const flushShard = async (rows: FrameColumns) => {
    const { ref, reused } = await writeShard(join(input.workDir, shardFileName(shards.length)), rows);
    shards.push(ref);
    if (reused) reusedShards++;
    hooks.onProgress?.(progress());
  };

  try {
    const translator = new SixFrameTranslator();
    const filled: FrameColumns[] = [];
    const held: FrameColumns[] = [];
    let heldFrames = 0;
    for await (const chunk of chunkRecords(readSequences(input.input), input.input, input.expectedLength, stats, hooks.warn)) {
      hooks.signal?.throwIfAborted();
      if (chunk.k === 1) {
        await records.add(chunk.record);
        if (chunk.record.id !== chunk.record.originalId) renamed.push(chunk.record);
      }
      const name = Buffer.from(chunk.name, 'utf8');
      stats.frames += translator.translateEach(chunk.bases, (frame, nucleotide, protein) => {
        columns.push(name, FRAME_SUFFIX[frame], chunk.record.index, chunk.k - 1, nucleotide, protein);
        // Exact shard sizes; a chunk's frames may straddle two shards (the writers join results
        // on record_index and chunk_index).
        if (columns.length === input.shardFrames) {
          filled.push(columns);
          columns = new FrameColumns();
        }
      });
      for (const shard of filled.splice(0)) {
        held.push(shard);
        heldFrames += shard.length;
        while (held.length > 0 && heldFrames - held[0].length >= keepBack) {
          heldFrames -= held[0].length;
          await flushShard(held.shift()!);
        }
      }
      if (stats.chunks % PROGRESS_EVERY_CHUNKS === 0) hooks.onProgress?.(progress());
    }
    if (stats.records === 0) throw new ReadInputError(input.input, 'no record with a non-empty sequence');
    if (keepBack > 0 && heldFrames + columns.length > 0) {
      for (const shard of FrameColumns.recut([...held, columns], shardSizes(heldFrames + columns.length, input.shardFrames))) await flushShard(shard);
    } else if (columns.length > 0 || shards.length === 0) {
      // Nothing is held back here (without a tail every full shard was written at once). A run
      // that keeps no frame still gets one (empty) shard, so downstream steps see a table.
      await flushShard(columns);
    }
  } catch (err) {
    await records.abort(err);
    throw err;
  }
  const recordsRef = await records.finish();
  const idMap = renamed.length > 0 ? await writeMarkedIdMap(join(input.workDir, ID_MAP_FILE), renamed) : undefined;
  return prepareReadsOutput.parse({ shards, records: recordsRef, idMap, reusedShards, stats });
}

async function writeShard(path: string, columns: FrameColumns): Promise<{ ref: FileRef; reused: boolean }> {
  const bytes = columns.toIpcFile();
  const existing = await readValidMarker(path);
  if (existing && existing.rows === columns.length && existing.bytes === bytes.length) {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (existing.sha256 === sha256) return { ref: { path, rows: existing.rows, bytes: existing.bytes, sha256 }, reused: true };
  }
  const written = await writeFileAtomic(path, bytes);
  await writeDoneMarker(path, { rows: columns.length, ...written });
  return { ref: { path, rows: columns.length, ...written }, reused: false };
}

async function writeMarkedIdMap(path: string, renamed: ReadRecord[]): Promise<FileRef> {
  const written = await writeIdMap(path, renamed);
  await writeDoneMarker(path, written);
  return { path, ...written };
}

/** records.arrow written while the records stream by, in batches, so its size never sits in memory. */
class StreamedRecordsTable {
  private readonly writer = new RecordBatchFileWriter();
  private readonly written: Promise<{ bytes: number; sha256: string }>;
  private pending: ReadRecord[] = [];
  private rows = 0;

  constructor(private readonly path: string) {
    this.written = writeFileAtomic(path, this.writer);
    // Failures surface through finish()/abort(); this only keeps Node from reporting them early.
    this.written.catch(() => undefined);
  }

  async add(record: ReadRecord): Promise<void> {
    this.pending.push(record);
    if (this.pending.length >= RECORDS_BATCH) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    this.writer.write(recordsBatch(this.pending));
    this.rows += this.pending.length;
    this.pending = [];
    // Let the file writer drain the batch before more pile up.
    await new Promise((resolve) => setImmediate(resolve));
  }

  async finish(): Promise<FileRef> {
    await this.flush();
    this.writer.finish();
    const written = await this.written;
    await writeDoneMarker(this.path, { rows: this.rows, ...written });
    return { path: this.path, rows: this.rows, ...written };
  }

  async abort(reason: unknown): Promise<void> {
    this.writer.abort(reason);
    await this.written.catch(() => undefined);
  }
}
