/**
 * Streams the records of a FASTA or FASTQ file, plain or gzip/bzip2/xz compressed.
 * Never holds more than one record and one decompressed block in memory.
 */
import { readDecompressed } from './decompress';
import { FastxParser, SequenceRecord } from './fastx-parser';

export type { SequenceRecord, SequenceFormat } from './fastx-parser';

export async function* readSequences(path: string): AsyncGenerator<SequenceRecord> {
  const parser = new FastxParser(path);
  for await (const chunk of readDecompressed(path)) {
    yield* parser.push(chunk);
  }
  yield* parser.finish();
}
