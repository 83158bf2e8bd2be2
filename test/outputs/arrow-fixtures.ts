// Writes records and shard-result tables in the documented formats (docs/data-formats.md) for
// tests of the output writers, exactly as prepare and the GPU runtime lay them out.
import { writeFileSync } from 'node:fs';
import { makeVector, RecordBatch, Schema, Table, tableToIPC, Uint32, Uint64, Utf8, vectorFromArray } from 'apache-arrow';
import { formatMetadata, TABLES, type TableFormat } from '../../activities/formats';

function withFormat(table: Table, format: TableFormat): Table {
  const schema = new Schema(table.schema.fields, formatMetadata(format));
  return new Table(schema, table.batches.map((b) => new RecordBatch(schema, b.data)));
}

export interface RecordRow {
  recordId: string;
  originalId?: string;
  length: number;
  chunks: number;
}

export function writeRecordsTable(file: string, rows: RecordRow[]): void {
  const table = new Table({
    record_index: vectorFromArray(rows.map((_, i) => i), new Uint32()),
    record_id: vectorFromArray(rows.map((r) => r.recordId), new Utf8()),
    original_id: vectorFromArray(rows.map((r) => r.originalId ?? r.recordId), new Utf8()),
    length: vectorFromArray(rows.map((r) => BigInt(r.length)), new Uint64()),
    chunks: vectorFromArray(rows.map((r) => r.chunks), new Uint32()),
  });
  writeFileSync(file, tableToIPC(withFormat(table, TABLES.records), 'file'));
}

export interface ScoreRow {
  frameId: string;
  recordIndex: number;
  chunkIndex: number;
  scoreOthers: number;
  scoreVirus: number;
}

/** A shard result of the current version, or as version 1 wrote it (no record_index / chunk_index). */
export function writeResultsTable(file: string, rows: ScoreRow[], version = TABLES.results.version): void {
  const keys = {
    record_index: vectorFromArray(rows.map((r) => r.recordIndex), new Uint32()),
    chunk_index: vectorFromArray(rows.map((r) => r.chunkIndex), new Uint32()),
  };
  const table = new Table({
    frame_id: vectorFromArray(rows.map((r) => r.frameId), new Utf8()),
    ...(version === 1 ? {} : keys),
    score_others: makeVector(Float32Array.from(rows.map((r) => r.scoreOthers))),
    score_virus: makeVector(Float32Array.from(rows.map((r) => r.scoreVirus))),
  });
  writeFileSync(file, tableToIPC(withFormat(table, { ...TABLES.results, version }), 'file'));
}
