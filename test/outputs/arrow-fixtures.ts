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
  scoreOthers: number;
  scoreVirus: number;
}

export function writeResultsTable(file: string, rows: ScoreRow[]): void {
  const table = new Table({
    frame_id: vectorFromArray(rows.map((r) => r.frameId), new Utf8()),
    score_others: makeVector(Float32Array.from(rows.map((r) => r.scoreOthers))),
    score_virus: makeVector(Float32Array.from(rows.map((r) => r.scoreVirus))),
  });
  writeFileSync(file, tableToIPC(withFormat(table, TABLES.results), 'file'));
}
