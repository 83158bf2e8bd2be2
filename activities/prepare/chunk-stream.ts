/**
 * The whole read preparation as one stream: records from the file, empty ones skipped,
 * ids made unique, each cut into chunks of the expected length and each chunk translated
 * in six frames. Consumers (frame shards, the original's FASTA files) only format it.
 */
import { chunkName, chunkSpans } from './chunking';
import type { SequenceRecord } from './sequence-reader';
import { KeptFrame, SixFrameTranslator } from './translation';
import { UniqueIds } from './unique-ids';

export interface ReadRecord {
  /** 0-based index among the records kept (empty ones are skipped). */
  index: number;
  /** 1-based position in the input file, counting every record. */
  number: number;
  /** Unique id used in chunk and frame names. */
  id: string;
  /** Id as in the input. */
  originalId: string;
  length: number;
  chunks: number;
}

export interface Chunk {
  record: ReadRecord;
  /** 1-based chunk number within the record. */
  k: number;
  /** `{id}_chunk_{k}`. */
  name: string;
  /** The chunk's bases as in the input (case kept): a view into the record's bytes, not a copy. */
  bases: Uint8Array;
}

export interface PreparedChunk extends Chunk {
  frames: KeptFrame[];
}

export interface PrepareStats {
  records: number;
  skippedEmpty: number;
  duplicates: number;
  chunks: number;
  frames: number;
  bases: number;
}

export function emptyStats(): PrepareStats {
  return { records: 0, skippedEmpty: 0, duplicates: 0, chunks: 0, frames: 0, bases: 0 };
}

/** At most this many warnings of one kind are reported individually; the rest are counted. */
export const WARNINGS_PER_KIND = 20;

export type Warn = (message: string) => void;

/**
 * Chunks of every record, in input order (`path` names the input in warnings), not yet
 * translated. `stats` is updated as the stream is consumed (all but `frames`); `warn`
 * receives skipped-record and renamed-id notices.
 */
export async function* chunkRecords(
  records: AsyncIterable<SequenceRecord>,
  path: string,
  expectedLength: number,
  stats: PrepareStats,
  warn: Warn = () => undefined,
): AsyncGenerator<Chunk> {
  const ids = new UniqueIds();
  for await (const input of records) {
    if (input.sequence.length === 0) {
      stats.skippedEmpty++;
      if (stats.skippedEmpty <= WARNINGS_PER_KIND) {
        warn(`${path}: record ${input.number} (${input.id || 'no id'}): empty sequence, skipped`);
      }
      continue;
    }
    const id = ids.assign(input.id);
    if (id !== input.id) {
      stats.duplicates++;
      if (stats.duplicates <= WARNINGS_PER_KIND) {
        warn(`${path}: record ${input.number}: duplicate id "${input.id}" renamed to "${id}"`);
      }
    }
    const record: ReadRecord = {
      index: stats.records,
      number: input.number,
      id,
      originalId: input.id,
      length: input.sequence.length,
      chunks: Math.ceil(input.sequence.length / expectedLength),
    };
    stats.records++;
    stats.bases += record.length;
    for (const span of chunkSpans(record.length, expectedLength)) {
      stats.chunks++;
      yield { record, k: span.k, name: chunkName(id, span.k), bases: input.sequence.subarray(span.start, span.end) };
    }
  }
  const hidden = Math.max(0, stats.skippedEmpty - WARNINGS_PER_KIND) + Math.max(0, stats.duplicates - WARNINGS_PER_KIND);
  if (hidden > 0) warn(`${path}: ${hidden} further warnings of the same kinds not shown (see the stats)`);
}

/** `chunkRecords` with each chunk's kept frames as strings (also counted in `stats.frames`). */
export async function* prepareChunks(
  records: AsyncIterable<SequenceRecord>,
  path: string,
  expectedLength: number,
  stats: PrepareStats,
  warn?: Warn,
): AsyncGenerator<PreparedChunk> {
  const translator = new SixFrameTranslator();
  for await (const chunk of chunkRecords(records, path, expectedLength, stats, warn)) {
    const frames = translator.translate(chunk.bases);
    stats.frames += frames.length;
    yield { ...chunk, frames };
  }
}
