/**
 * The Arrow IPC tables of read preparation (docs/data-formats.md): frame shards
 * (`virnucpro.frames`) and the records table (`virnucpro.records`), versions from formats.json. String columns
 * are assembled straight into Arrow's offsets + bytes layout, which is several times
 * faster than Arrow's generic builders; frame columns are even fed bytes, never strings.
 */
import {
  Field,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Uint32,
  Uint64,
  Utf8,
  type Data,
  type DataType,
} from 'apache-arrow';
import type { ReadRecord } from './chunk-stream';
import { formatMetadata, TABLES } from '../formats';


export const framesSchema = new Schema(
  [
    new Field('frame_id', new Utf8(), false),
    new Field('record_index', new Uint32(), false),
    new Field('chunk_index', new Uint32(), false),
    new Field('nucleotide', new Utf8(), false),
    new Field('protein', new Utf8(), false),
  ],
  formatMetadata(TABLES.frames),
);

export const recordsSchema = new Schema(
  [
    new Field('record_index', new Uint32(), false),
    new Field('record_id', new Utf8(), false),
    new Field('original_id', new Utf8(), false),
    new Field('length', new Uint64(), false),
    new Field('chunks', new Uint32(), false),
  ],
  formatMetadata(TABLES.records),
);

/** Arrow utf8 column data from JS strings: one pass to size, one to copy. */
export function utf8Column(values: readonly string[]): Data<Utf8> {
  const offsets = new Int32Array(values.length + 1);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    total += Buffer.byteLength(values[i], 'utf8');
    offsets[i + 1] = total;
  }
  if (total > 0x7fffffff) throw new RangeError('string column exceeds 2 GiB; use a smaller shard size');
  const bytes = Buffer.allocUnsafe(total);
  for (let i = 0; i < values.length; i++) bytes.write(values[i], offsets[i], 'utf8');
  return makeData({ type: new Utf8(), length: values.length, nullCount: 0, valueOffsets: offsets, data: bytes });
}

function batch(schema: Schema, length: number, children: Data<DataType>[]): RecordBatch {
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length, nullCount: 0, children }));
}

/** A utf8 column built from bytes: values are appended to one growing buffer plus offsets. */
class Utf8Builder {
  private bytes = Buffer.allocUnsafe(1 << 16);
  private offsets = new Int32Array(1 << 10);
  length = 0;

  /** Appends one value made of `parts` concatenated (e.g. a chunk name and a frame suffix). */
  push(...parts: Uint8Array[]): void {
    let end = this.offsets[this.length];
    let size = 0;
    for (const part of parts) size += part.length;
    if (end + size > this.bytes.length) this.growBytes(end + size);
    for (const part of parts) {
      this.bytes.set(part, end);
      end += part.length;
    }
    if (this.length + 2 > this.offsets.length) {
      const grown = new Int32Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    this.offsets[++this.length] = end;
  }

  /** The bytes of value `i` (a view: valid until the next push). */
  value(i: number): Uint8Array {
    return this.bytes.subarray(this.offsets[i], this.offsets[i + 1]);
  }

  private growBytes(needed: number): void {
    if (needed > 0x7fffffff) throw new RangeError('string column exceeds 2 GiB; use a smaller shard size');
    const grown = Buffer.allocUnsafe(Math.min(0x7fffffff, Math.max(needed, this.bytes.length * 2)));
    this.bytes.copy(grown, 0, 0, this.offsets[this.length]);
    this.bytes = grown;
  }

  finish(): Data<Utf8> {
    const end = this.offsets[this.length];
    return makeData({
      type: new Utf8(),
      length: this.length,
      nullCount: 0,
      valueOffsets: this.offsets.subarray(0, this.length + 1),
      data: this.bytes.subarray(0, end),
    });
  }
}

/** The rows of one frame shard, collected column by column as bytes. */
export class FrameColumns {
  private readonly frameId = new Utf8Builder();
  private readonly nucleotide = new Utf8Builder();
  private readonly protein = new Utf8Builder();
  private recordIndex: number[] = [];
  private chunkIndex: number[] = [];

  get length(): number {
    return this.recordIndex.length;
  }

  /**
   * One frame: its id is `chunkName` (utf8 bytes) followed by `frameSuffix` (e.g. "F1"); it was cut
   * from chunk `chunkIndex` (0-based) of record `recordIndex`.
   */
  push(chunkName: Uint8Array, frameSuffix: Uint8Array, recordIndex: number, chunkIndex: number, nucleotide: Uint8Array, protein: Uint8Array): void {
    this.frameId.push(chunkName, frameSuffix);
    this.recordIndex.push(recordIndex);
    this.chunkIndex.push(chunkIndex);
    this.nucleotide.push(nucleotide);
    this.protein.push(protein);
  }

  /** The rows of `parts` (in order) cut into consecutive tables of `sizes` rows. */
  static recut(parts: readonly FrameColumns[], sizes: readonly number[]): FrameColumns[] {
    const total = parts.reduce((n, p) => n + p.length, 0);
    if (sizes.reduce((a, b) => a + b, 0) !== total) throw new RangeError(`cannot cut ${total} rows into shards of ${sizes.join('+')}`);
    const out: FrameColumns[] = [];
    let part = 0;
    let row = 0;
    for (const size of sizes) {
      const cut = new FrameColumns();
      while (cut.length < size) {
        while (row === parts[part].length) [part, row] = [part + 1, 0];
        const from = parts[part];
        cut.frameId.push(from.frameId.value(row));
        cut.recordIndex.push(from.recordIndex[row]);
        cut.chunkIndex.push(from.chunkIndex[row]);
        cut.nucleotide.push(from.nucleotide.value(row));
        cut.protein.push(from.protein.value(row));
        row++;
      }
      out.push(cut);
    }
    return out;
  }

  /** The complete Arrow IPC file of these rows. */
  toIpcFile(): Uint8Array {
    const rows = batch(framesSchema, this.length, [
      this.frameId.finish(),
      makeData({ type: new Uint32(), length: this.length, nullCount: 0, data: Uint32Array.from(this.recordIndex) }),
      makeData({ type: new Uint32(), length: this.length, nullCount: 0, data: Uint32Array.from(this.chunkIndex) }),
      this.nucleotide.finish(),
      this.protein.finish(),
    ]);
    const writer = new RecordBatchFileWriter();
    writer.write(rows);
    writer.finish();
    return writer.toUint8Array(true);
  }
}

export function recordsBatch(records: readonly ReadRecord[]): RecordBatch {
  const n = records.length;
  return batch(recordsSchema, n, [
    makeData({ type: new Uint32(), length: n, nullCount: 0, data: Uint32Array.from(records, (r) => r.index) }),
    utf8Column(records.map((r) => r.id)),
    utf8Column(records.map((r) => r.originalId)),
    makeData({ type: new Uint64(), length: n, nullCount: 0, data: BigUint64Array.from(records, (r) => BigInt(r.length)) }),
    makeData({ type: new Uint32(), length: n, nullCount: 0, data: Uint32Array.from(records, (r) => r.chunks) }),
  ]);
}
