// What happened where and when, from the shard results the write step gathers (both files are
// read back by report.html):
// - trace.tsv: one row per task of the gpu step, Nextflow-trace style: where and when each shard
//   was computed, how fast, with how much memory, and with which numerics (Unix milliseconds);
// - telemetry.tsv: the runtime's once-a-second samples while it computed each shard: frames
//   done, the device's frames/s, NVML's GPU utilisation and the memory held (empty on CPUs).
// The run report reads both back (`readTrace`, `readTelemetry`).
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { ShardResult } from '../gpu/embed-shard';
import { writeFileAtomic } from '../files/atomic';
import { readResultTelemetry } from './tables';
import { syntheticBanner, type SyntheticWeights } from './prediction-outputs';

export const TRACE_FILE = 'trace.tsv';
export const TELEMETRY_FILE = 'telemetry.tsv';

export const TRACE_COLUMNS = [
  'task_id', 'step', 'shard', 'device', 'attempt', 'start', 'end', 'duration_s', 'frames', 'frames_per_s',
  'esm2_tokens_per_s', 'peak_memory_bytes', 'restarts', 'oom_retries', 'numerics', 'exit',
] as const;

export function traceRows(results: ShardResult[]): string[][] {
  return results.map((r, index) => {
    const seconds = (r.finishedAt - r.startedAt) / 1000;
    return [
      String(index + 1),
      'embed',
      path.basename(r.file.path, '.arrow').replace(/^results-/, ''),
      r.device,
      String(r.attempt),
      String(r.startedAt),
      String(r.finishedAt),
      seconds.toFixed(3),
      String(r.frames),
      seconds > 0 ? (r.frames / seconds).toFixed(1) : '',
      seconds > 0 ? (r.esm2Tokens / seconds).toFixed(0) : '',
      r.peakMemoryBytes === null ? '' : String(r.peakMemoryBytes),
      String(r.restarts),
      String(r.oomRetries),
      r.numerics,
      '0',
    ];
  });
}

export const TELEMETRY_COLUMNS = ['device', 'shard', 'attempt', 'time', 'frames_done', 'frames_per_s', 'gpu_utilization', 'gpu_memory_bytes'] as const;

type Delivered = { file: string; rows: number; bytes: number; sha256: string };

async function writeTable(file: string, header: readonly string[], rows: string[][], synthetic: SyntheticWeights): Promise<Delivered> {
  const lines = [...(synthetic ? [syntheticBanner(synthetic)] : []), header.join('\t'), ...rows.map((row) => row.join('\t'))];
  const { bytes, sha256 } = await writeFileAtomic(file, lines.join('\n') + '\n');
  return { file, rows: rows.length, bytes, sha256 };
}

export function writeTrace(outDir: string, results: ShardResult[], synthetic: SyntheticWeights): Promise<Delivered> {
  return writeTable(path.join(outDir, TRACE_FILE), TRACE_COLUMNS, traceRows(results), synthetic);
}

export async function writeTelemetry(outDir: string, results: ShardResult[], synthetic: SyntheticWeights): Promise<Delivered> {
  const rows: string[][] = [];
  for (const r of results) {
    const shard = path.basename(r.file.path, '.arrow').replace(/^results-/, '');
    for (const s of await readResultTelemetry(r.file.path)) {
      rows.push([r.device, shard, String(r.attempt), s.time.toFixed(3), String(s.framesDone), s.framesPerSecond.toFixed(2), s.gpuUtilization === null ? '' : String(s.gpuUtilization), s.gpuMemoryBytes === null ? '' : String(s.gpuMemoryBytes)]);
    }
  }
  return writeTable(path.join(outDir, TELEMETRY_FILE), TELEMETRY_COLUMNS, rows, synthetic);
}

/** One trace.tsv row as the report uses it (times in Unix ms). */
export interface TraceRow {
  shard: string;
  device: string;
  attempt: number;
  start: number;
  end: number;
  frames: number;
  peakMemoryBytes: number | null;
  restarts: number;
}

/** One telemetry.tsv row as the report uses it. */
export interface TelemetryRow {
  device: string;
  shard: string;
  /** Unix seconds. */
  time: number;
  framesPerSecond: number;
  gpuUtilization: number | null;
  gpuMemoryBytes: number | null;
}

/** The rows of one of our TSV files (a synthetic run's banner line skipped), keyed by column; none when it is missing. */
async function readTsv(file: string): Promise<Array<Record<string, string>>> {
  const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l && !l.startsWith('#'));
  if (lines.length === 0) return [];
  const header = lines[0].split('\t');
  return lines.slice(1).map((line) => Object.fromEntries(line.split('\t').map((value, i) => [header[i], value])));
}

const numberOrNull = (text: string | undefined) => (text === undefined || text === '' ? null : Number(text));

export async function readTrace(outDir: string): Promise<TraceRow[]> {
  return (await readTsv(path.join(outDir, TRACE_FILE))).map((r) => ({
    shard: r.shard,
    device: r.device,
    attempt: Number(r.attempt),
    start: Number(r.start),
    end: Number(r.end),
    frames: Number(r.frames),
    peakMemoryBytes: numberOrNull(r.peak_memory_bytes),
    restarts: Number(r.restarts),
  }));
}

export async function readTelemetry(outDir: string): Promise<TelemetryRow[]> {
  return (await readTsv(path.join(outDir, TELEMETRY_FILE))).map((r) => ({
    device: r.device,
    shard: r.shard,
    time: Number(r.time),
    framesPerSecond: Number(r.frames_per_s),
    gpuUtilization: numberOrNull(r.gpu_utilization),
    gpuMemoryBytes: numberOrNull(r.gpu_memory_bytes),
  }));
}
