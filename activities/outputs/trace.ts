// trace.tsv: one row per task of the gpu step, Nextflow-trace style, from the shard results the
// write step gathers: where and when each shard was computed, how fast, with how much memory, and
// with which numerics. Times are Unix milliseconds; the run report and report.html read it too.
import * as path from 'node:path';
import type { ShardResult } from '../gpu/embed-shard';
import { writeFileAtomic } from '../files/atomic';
import { syntheticBanner, type SyntheticWeights } from './prediction-outputs';

export const TRACE_FILE = 'trace.tsv';

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

export async function writeTrace(outDir: string, results: ShardResult[], synthetic: SyntheticWeights): Promise<{ file: string; rows: number; bytes: number; sha256: string }> {
  const file = path.join(outDir, TRACE_FILE);
  const lines = [...(synthetic ? [syntheticBanner(synthetic)] : []), TRACE_COLUMNS.join('\t'), ...traceRows(results).map((row) => row.join('\t'))];
  const { bytes, sha256 } = await writeFileAtomic(file, lines.join('\n') + '\n');
  return { file, rows: results.length, bytes, sha256 };
}
