/**
 * Streams the records of a FASTA or FASTQ file, plain or gzip/bzip2/xz compressed.
 * Never holds more than one record and one decompressed block in memory.
 */
import { decompress, readDecompressed } from './decompress';
import { FastxParser, SequenceRecord } from './fastx-parser';

export type { SequenceRecord } from './fastx-parser';

export function readSequences(path: string): AsyncGenerator<SequenceRecord> {
  return parseRecords(readDecompressed(path), path);
}

/** The same from any byte stream (a pipe, generated data); `name` is used in errors. */
export function readSequencesFrom(source: AsyncIterable<Uint8Array>, name: string): AsyncGenerator<SequenceRecord> {
  return parseRecords(decompress(source, name), name);
}

async function* parseRecords(bytes: AsyncIterable<Uint8Array>, name: string): AsyncGenerator<SequenceRecord> {
  const parser = new FastxParser(name);
  // Plain loops, not `yield*` over the arrays: on Node 20, an async generator that delegates
  // to an array per input block kept ~300 bytes per record alive (test/prepare/memory.test.ts).
  for await (const chunk of bytes) {
    for (const record of parser.push(chunk)) yield record;
  }
  for (const record of parser.finish()) yield record;
}
