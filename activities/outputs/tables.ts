// Readers for the two tables the outputs are made from (docs/data-formats.md): the records
// table written by prepare and the per-shard result files written by the GPU runtime (of the
// current version, and of version 1 from work folders of earlier releases).
// Result files are read one record batch at a time through a file handle, so a shard that also
// carries embeddings (3328 floats per frame) never has to fit in memory at once.
import { promises as fs } from 'node:fs';
import { AsyncRecordBatchFileReader, RecordBatch, Schema } from 'apache-arrow';
import { TABLES, type TableFormat } from '../formats';

export class TableFormatError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'TableFormatError';
  }
}

export interface InputRecord {
  recordIndex: number;
  recordId: string;
  originalId: string;
  length: number;
  chunks: number;
}

export interface FrameScore {
  frameId: string;
  /** The records table's `record_index` of the input record the frame was cut from. */
  recordIndex: number;
  /** Which of that record's chunks (0-based) the frame was cut from. */
  chunkIndex: number;
  scoreOthers: number;
  scoreVirus: number;
}

/** A table's format (`format`, version `oldest` to current) and columns (by version); returns its version. */
function checkFormat(file: string, schema: Schema, { format, version }: TableFormat, columnsOf: (version: number) => string[], oldest: number): number {
  const found = schema.metadata.get('virnucpro.format');
  const foundVersion = schema.metadata.get('virnucpro.version');
  if (found !== format) throw new TableFormatError(file, `expected a ${format} table, found format ${found ?? '(none)'}`);
  if (Number(foundVersion) > version) {
    throw new TableFormatError(file, `${format} version ${foundVersion} was written by a newer virnucpro (this one reads up to version ${version}); upgrade virnucpro, or run again with --force to recompute`);
  }
  const readable = Number(foundVersion);
  if (!/^[0-9]+$/.test(foundVersion ?? '') || readable < oldest) {
    const versions = oldest === version ? `version ${version}` : `versions ${oldest} to ${version}`;
    throw new TableFormatError(file, `${format} version ${foundVersion ?? '(none)'} is not supported (this build reads ${versions})`);
  }
  const names = new Set(schema.fields.map((f) => f.name));
  const missing = columnsOf(readable).filter((c) => !names.has(c));
  if (missing.length > 0) throw new TableFormatError(file, `missing column(s) ${missing.join(', ')}`);
  return readable;
}

async function* batches(
  file: string,
  format: TableFormat,
  columnsOf: (version: number) => string[],
  oldest = format.version,
): AsyncGenerator<{ batch: RecordBatch; version: number }> {
  const handle = await fs.open(file, 'r');
  try {
    const reader = await AsyncRecordBatchFileReader.from(handle);
    await reader.open();
    const version = checkFormat(file, reader.schema, format, columnsOf, oldest);
    for (let i = 0; i < reader.numRecordBatches; i++) {
      const batch = await reader.readRecordBatch(i);
      if (batch) yield { batch, version };
    }
  } finally {
    await handle.close();
  }
}

export async function readRecords(file: string): Promise<InputRecord[]> {
  const columns = ['record_index', 'record_id', 'original_id', 'length', 'chunks'];
  const records: InputRecord[] = [];
  for await (const { batch } of batches(file, TABLES.records, () => columns)) {
    const [index, id, original, length, chunks] = columns.map((c) => batch.getChild(c)!);
    for (let row = 0; row < batch.numRows; row++) {
      records.push({
        recordIndex: Number(index.get(row)),
        recordId: id.get(row) as string,
        originalId: original.get(row) as string,
        length: Number(length.get(row)),
        chunks: Number(chunks.get(row)),
      });
    }
  }
  return records;
}

/** Shard results of this version hold no record_index / chunk_index (they came with version 2). */
const RESULTS_WITHOUT_KEYS = 1;
const SCORE_COLUMNS = ['frame_id', 'score_others', 'score_virus'];
const KEY_COLUMNS = ['record_index', 'chunk_index'];

/**
 * The scores of one shard result file, in file order, each with the record and chunk it belongs
 * to. `records` (the records table) is consulted only for a version 1 file, whose frames carry
 * nothing but their ids.
 */
export async function* readFrameScores(file: string, records: readonly InputRecord[]): AsyncGenerator<FrameScore> {
  const columnsOf = (version: number) => (version === RESULTS_WITHOUT_KEYS ? SCORE_COLUMNS : [...SCORE_COLUMNS, ...KEY_COLUMNS]);
  let keysOfId: ((frameId: string) => FrameKeys) | null = null;
  for await (const { batch, version } of batches(file, TABLES.results, columnsOf, RESULTS_WITHOUT_KEYS)) {
    const ids = batch.getChild('frame_id')!;
    const others = batch.getChild('score_others')!;
    const virus = batch.getChild('score_virus')!;
    if (others.type.toString() !== 'Float32' || virus.type.toString() !== 'Float32') {
      throw new TableFormatError(file, 'score columns must be float32');
    }
    const fromIds = version === RESULTS_WITHOUT_KEYS ? (keysOfId ??= keysFromFrameIds(file, records)) : null;
    const recordIndex = batch.getChild('record_index');
    const chunkIndex = batch.getChild('chunk_index');
    if (!fromIds && (recordIndex!.type.toString() !== 'Uint32' || chunkIndex!.type.toString() !== 'Uint32')) {
      throw new TableFormatError(file, 'record_index and chunk_index must be uint32');
    }
    for (let row = 0; row < batch.numRows; row++) {
      const frameId = ids.get(row) as string;
      const keys = fromIds ? fromIds(frameId) : { recordIndex: recordIndex!.get(row) as number, chunkIndex: chunkIndex!.get(row) as number };
      yield { frameId, ...keys, scoreOthers: others.get(row) as number, scoreVirus: virus.get(row) as number };
    }
  }
}

type FrameKeys = Pick<FrameScore, 'recordIndex' | 'chunkIndex'>;

/**
 * For version 1 results only: a frame's record and chunk taken from its id as prepare wrote it,
 * `{record_id}_chunk_{k}{F1..R3}` (the records table's ids are unique, k counts from 1).
 */
function keysFromFrameIds(file: string, records: readonly InputRecord[]): (frameId: string) => FrameKeys {
  const indexOfId = new Map(records.map((r) => [r.recordId, r.recordIndex]));
  const frameId = /^(.*)_chunk_([0-9]+)[FR][123]$/s;
  return (id) => {
    const parts = frameId.exec(id);
    if (!parts) throw new TableFormatError(file, `frame id "${id}" is not of the form <record>_chunk_<k><F1..R3>`);
    const recordIndex = indexOfId.get(parts[1]);
    if (recordIndex === undefined) throw new TableFormatError(file, `frame "${id}" belongs to record "${parts[1]}", which is not in the records table`);
    return { recordIndex, chunkIndex: Number(parts[2]) - 1 };
  };
}

/** What the runtime measured once a second while it computed a shard (docs/data-formats.md). */
export interface TelemetrySample {
  /** Unix seconds. */
  time: number;
  framesDone: number;
  framesPerSecond: number;
  gpuUtilization: number | null;
  gpuMemoryBytes: number | null;
}

const TELEMETRY_COLUMNS = ['time', 'frames_done', 'frames_per_s', 'gpu_utilization', 'gpu_memory_bytes'];

/**
 * A shard result's telemetry (`<result>.telemetry.json` beside it, docs/data-formats.md); empty
 * when there is none (informational: it has no marker, and a run without it just plots less).
 */
export async function readResultTelemetry(file: string): Promise<TelemetrySample[]> {
  const telemetryFile = `${file}.telemetry.json`;
  const text = await fs.readFile(telemetryFile, 'utf8').catch(() => null);
  if (!text) return [];
  const parsed = JSON.parse(text) as { columns: string[]; rows: Array<Array<number | null>> };
  if (parsed.columns.join() !== TELEMETRY_COLUMNS.join()) throw new TableFormatError(telemetryFile, `telemetry columns ${parsed.columns.join(', ')} are not ${TELEMETRY_COLUMNS.join(', ')}`);
  return parsed.rows.map(([time, framesDone, framesPerSecond, gpuUtilization, gpuMemoryBytes]) => ({
    time: time as number,
    framesDone: framesDone as number,
    framesPerSecond: framesPerSecond as number,
    gpuUtilization,
    gpuMemoryBytes,
  }));
}
