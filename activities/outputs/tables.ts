// Readers for the two tables the outputs are made from (docs/data-formats.md): the records
// table written by prepare and the per-shard result files written by the GPU runtime.
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
  scoreOthers: number;
  scoreVirus: number;
}

function checkFormat(file: string, schema: Schema, { format, version }: TableFormat, columns: string[]): void {
  const found = schema.metadata.get('virnucpro.format');
  const foundVersion = schema.metadata.get('virnucpro.version');
  if (found !== format) throw new TableFormatError(file, `expected a ${format} table, found format ${found ?? '(none)'}`);
  if (Number(foundVersion) > version) {
    throw new TableFormatError(file, `${format} version ${foundVersion} was written by a newer virnucpro (this one reads up to version ${version}); upgrade virnucpro, or run again with --force to recompute`);
  }
  if (foundVersion !== String(version)) {
    throw new TableFormatError(file, `${format} version ${foundVersion ?? '(none)'} is not supported (this build reads version ${version})`);
  }
  const names = new Set(schema.fields.map((f) => f.name));
  const missing = columns.filter((c) => !names.has(c));
  if (missing.length > 0) throw new TableFormatError(file, `missing column(s) ${missing.join(', ')}`);
}

async function* batches(file: string, format: TableFormat, columns: string[]): AsyncGenerator<RecordBatch> {
  const handle = await fs.open(file, 'r');
  try {
    const reader = await AsyncRecordBatchFileReader.from(handle);
    await reader.open();
    checkFormat(file, reader.schema, format, columns);
    for (let i = 0; i < reader.numRecordBatches; i++) {
      const batch = await reader.readRecordBatch(i);
      if (batch) yield batch;
    }
  } finally {
    await handle.close();
  }
}

export async function readRecords(file: string): Promise<InputRecord[]> {
  const columns = ['record_index', 'record_id', 'original_id', 'length', 'chunks'];
  const records: InputRecord[] = [];
  for await (const batch of batches(file, TABLES.records, columns)) {
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

/** The scores of one shard result file, in file order. */
export async function* readFrameScores(file: string): AsyncGenerator<FrameScore> {
  const columns = ['frame_id', 'score_others', 'score_virus'];
  for await (const batch of batches(file, TABLES.results, columns)) {
    const ids = batch.getChild('frame_id')!;
    const others = batch.getChild('score_others')!;
    const virus = batch.getChild('score_virus')!;
    if (others.type.toString() !== 'Float32' || virus.type.toString() !== 'Float32') {
      throw new TableFormatError(file, 'score columns must be float32');
    }
    for (let row = 0; row < batch.numRows; row++) {
      yield { frameId: ids.get(row) as string, scoreOthers: others.get(row) as number, scoreVirus: virus.get(row) as number };
    }
  }
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
