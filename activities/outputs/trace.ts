// What happened where and when, from the shard results the write step gathers (both files are
// read back by report.html):
// - trace.tsv: one row per task of the gpu step, Nextflow-trace style: where and when each shard
//   was computed, how fast, with how much memory, and with which numerics (Unix milliseconds);
// - telemetry.tsv: the runtime's once-a-second samples while it computed each shard: frames
//   done, the device's frames/s, NVML's GPU utilisation and the memory held (empty on CPUs).
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
