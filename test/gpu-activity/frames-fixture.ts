// A small frame shard in the documented format (docs/data-formats.md), with deterministic
// sequences, for driving the real runtime in tests.
import { writeFileSync } from 'node:fs';
import { RecordBatch, Schema, Table, tableToIPC, Uint32, Utf8, vectorFromArray } from 'apache-arrow';
import { writeDoneMarker } from '../../activities/files/atomic';
import { hashFile } from '../../activities/steps/files';
import type { FileRef } from '../../activities/steps/implementation';
import { formatMetadata, TABLES } from '../../activities/formats';

const AMINO = 'ACDEFGHIKLMNPQRSTVWY';

export async function writeFrameShard(file: string, frames: number, seed = 1): Promise<FileRef> {
  let state = seed;
  const next = (n: number) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % n;
  };
  const ids: string[] = [];
  const records: number[] = [];
  const nucleotides: string[] = [];
  const proteins: string[] = [];
  for (let i = 0; i < frames; i++) {
    const aa = 60 + next(40);
    ids.push(`read${i}_chunk_1F${1 + (i % 3)}`);
    records.push(i);
    nucleotides.push(Array.from({ length: aa * 3 + 1 }, () => 'ACGT'[next(4)]).join(''));
    proteins.push(Array.from({ length: aa }, () => AMINO[next(20)]).join(''));
  }
  const table = new Table({
    frame_id: vectorFromArray(ids, new Utf8()),
    record_index: vectorFromArray(records, new Uint32()),
    chunk_index: vectorFromArray(records.map(() => 0), new Uint32()),
    nucleotide: vectorFromArray(nucleotides, new Utf8()),
    protein: vectorFromArray(proteins, new Utf8()),
  });
  const schema = new Schema(table.schema.fields, formatMetadata(TABLES.frames));
  writeFileSync(file, tableToIPC(new Table(schema, table.batches.map((b) => new RecordBatch(schema, b.data))), 'file'));
  const facts = await hashFile(file);
  await writeDoneMarker(file, { rows: frames, ...facts });
  return { path: file, rows: frames, ...facts };
}
