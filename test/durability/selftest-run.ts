// A selftest run sized for kill tests (~20-40 s on 2 cores): 16 device tasks of 2.5 s each on
// two CPU "devices", plus what a run's directory tells about its outputs.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CliEnvironment } from '../cli/harness';

export const FILES = 16;

export function selftestArgs(outDir: string, extra: string[] = []): string[] {
  return ['selftest', '--out', outDir, '--files', String(FILES), '--sleep-ms', '2500', '--devices', 'cpu:2', '--no-progress', ...extra];
}

/** Completed digest steps: step folders holding a `_step.done` record. */
export function digestStepsDone(outDir: string): number {
  const root = path.join(outDir, 'work', 'digest');
  if (!fs.existsSync(root)) return 0;
  return fs.readdirSync(root).filter((key) => fs.existsSync(path.join(root, key, '_step.done'))).length;
}

export async function waitForDigests(outDir: string, atLeast: number, timeoutMs = 90_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = digestStepsDone(outDir);
    if (done >= atLeast) return done;
    if (Date.now() > deadline) throw new Error(`only ${done} digest steps finished in ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Every generated file was digested exactly once: one final digest file per input file on disk,
 * and the report lists each input once.
 */
export function assertOutputsExactlyOnce(outDir: string): { digestFiles: number; reportEntries: number } {
  const root = path.join(outDir, 'work', 'digest');
  const digestFiles = fs.readdirSync(root).flatMap((key) => fs.readdirSync(path.join(root, key)).filter((name) => /^digest-file-\d+\.txt$/.test(name)));
  const expected = Array.from({ length: FILES }, (_, i) => `digest-file-${String(i).padStart(5, '0')}.txt`);
  assert.deepEqual([...digestFiles].sort(), expected, 'one digest file per input file');
  const reports = fs.readdirSync(path.join(outDir, 'work', 'combine')).map((key) => path.join(outDir, 'work', 'combine', key, 'report.json')).filter((p) => fs.existsSync(p));
  assert.equal(reports.length, 1, 'one report');
  const report = JSON.parse(fs.readFileSync(reports[0], 'utf8')) as { files: number; digests: string[] };
  const named = report.digests.map((line) => line.split(/\s+/)[1]).sort();
  assert.deepEqual(named, expected.map((name) => name.replace(/^digest-/, '')), 'report names each file once');
  assert.equal(report.files, FILES);
  return { digestFiles: digestFiles.length, reportEntries: report.digests.length };
}

/** `activity ...: scheduled N, completed N, failed N, timed out N, cancelled N` lines of `logs RUN`. */
export async function activityTallies(env: CliEnvironment, runId: string): Promise<string[]> {
  const logs = await env.run(['logs', runId, '--tail', '1']);
  assert.equal(logs.code, 0, logs.stderr);
  return logs.stdout.split('\n').filter((line) => line.startsWith('activity ') || line.startsWith('outcome'));
}

export function runIdOf(output: string): string {
  const match = /(?:started|attached to) run (\S+)/.exec(output);
  assert.ok(match, `no run id in:\n${output}`);
  return match[1];
}
