// run_report.json (machine-readable), run_report.md (a short human summary) and report.html (the
// same with plots, report-html.ts) for one run: what was computed where, how fast, what came
// from the cache, and what the user should know.
import * as path from 'node:path';
import { writeFileAtomic } from '../files/atomic';
import type { OutputsSummary } from './implementation';
import type { LegacyReport } from '../legacy/import-step';
import { ID_MAP_FILE } from '../prepare/id-map';
import { syntheticBanner, SyntheticWeights } from './prediction-outputs';
import { renderReportHtml } from './report-html';
import { readTelemetry, readTrace } from './trace';
import type { DeviceUse } from './device-use';
import type { DeviceReport } from '../../workflows/interpreter/messages';

export const RUN_REPORT_JSON = 'run_report.json';
export const RUN_REPORT_MD = 'run_report.md';
export const REPORT_HTML = 'report.html';

export interface StepReport {
  tasks: number | null;
  done: number;
  cached: number;
  failed: number;
  /** First task start to last completion in this run (null: no task completed, e.g. all cached before). */
  wallSeconds: number | null;
  /** Summed task durations. */
  busySeconds: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** Attempts that failed, or timed out (a lost heartbeat: a stalled device or a lost worker). */
  failedAttempts: number;
  timedOutAttempts: number;
}

export interface RunReport {
  version: 1;
  workflowId: string;
  runId: string;
  webUi: string | null;
  input: string;
  outputDir: string;
  started: string | null;
  finished: string | null;
  wallSeconds: number | null;
  settings: Record<string, unknown>;
  synthetic: SyntheticWeights;
  prepare: { records: number; skippedEmpty: number; duplicates: number; chunks: number; frames: number; bases: number };
  steps: Record<string, StepReport>;
  devices: Record<string, DeviceFigures>;
  results: Omit<OutputsSummary, 'devices'>;
  /** What came from earlier runs' files (predict --resume found some), else null. */
  imported: LegacyReport | null;
  /** What the scheduler said about devices (stalled, replaced, taken out). */
  notices: string[];
  warnings: string[];
}

/** One device's part in the run (run_report.json `devices`). */
export interface DeviceFigures {
  /** Shards whose results the run used (computed here or taken from the step cache), their frames and compute seconds. */
  shards: number;
  frames: number;
  seconds: number;
  framesPerSecond: number;
  esm2TokensPerSecond: number;
  /** Times its runtime process died and was restarted while computing a shard. */
  restarts: number;
  /** Times a new worker took the device over from one that was gone (the scheduler's count). */
  workerReplacements: number;
  /** Times it stopped making progress and its work moved elsewhere (the scheduler's count). */
  stalls: number;
  /** Of `shards`, those taken from an earlier run's results: not in the busy and idle figures. */
  shardsFromCache: number;
  /** Its shards computed in this run: summed duration, share of the embed step's span, time idle between them. */
  busySeconds: number;
  busyFraction: number;
  idleGapsSeconds: number;
  peakMemoryBytes: number | null;
}

/**
 * Per device: what its shards delivered (the write step's summary), what the scheduler saw of it
 * (a device that stalled before finishing anything is listed too) and how it spent the run (trace.tsv).
 */
export function deviceFigures(delivered: OutputsSummary['devices'], scheduled: Record<string, DeviceReport>, use: Record<string, DeviceUse>): RunReport['devices'] {
  const ids = [...new Set([...Object.keys(delivered), ...Object.keys(scheduled)])].sort();
  return Object.fromEntries(
    ids.map((id) => {
      const d = delivered[id] ?? { shards: 0, frames: 0, seconds: 0, esm2Tokens: 0, dnabertTokens: 0, restarts: 0 };
      const u = use[id];
      const figures: DeviceFigures = {
        shards: d.shards,
        frames: d.frames,
        seconds: d.seconds,
        framesPerSecond: d.seconds > 0 ? d.frames / d.seconds : 0,
        esm2TokensPerSecond: d.seconds > 0 ? d.esm2Tokens / d.seconds : 0,
        restarts: d.restarts,
        workerReplacements: scheduled[id]?.restarts ?? 0,
        stalls: scheduled[id]?.stalls ?? 0,
        shardsFromCache: u?.shardsFromCache ?? 0,
        busySeconds: u?.busySeconds ?? 0,
        busyFraction: u?.busyFraction ?? 0,
        idleGapsSeconds: u?.idleGapsSeconds ?? 0,
        peakMemoryBytes: u?.peakMemoryBytes ?? null,
      };
      return [id, figures];
    }),
  );
}

/** Warnings a user must see, from what prepare, the devices and the scheduler reported. */
export function runWarnings(report: Pick<RunReport, 'prepare' | 'devices' | 'synthetic' | 'results' | 'notices' | 'imported'>): string[] {
  const warnings: string[] = [];
  if (report.synthetic) warnings.push(syntheticBanner(report.synthetic).replace(/^# /, ''));
  if (report.prepare.skippedEmpty > 0) warnings.push(`${report.prepare.skippedEmpty} record(s) with an empty sequence were skipped`);
  if (report.prepare.duplicates > 0) warnings.push(`${report.prepare.duplicates} duplicate record id(s) were made unique; see ${ID_MAP_FILE}`);
  if (report.results.calls.no_frames > 0) warnings.push(`${report.results.calls.no_frames} record(s) kept no stop-free frame and have no score (call "no_frames")`);
  const restarts = Object.entries(report.devices).filter(([, d]) => d.restarts > 0);
  for (const [id, d] of restarts) warnings.push(`the runtime on ${id} died and was restarted ${d.restarts} time(s)`);
  // Devices that stalled, were replaced or taken out (their work moved; results are unchanged).
  warnings.push(...report.notices);
  for (const folder of report.imported?.folders ?? []) warnings.push(`earlier run's files under ${folder.folder}_* not used: ${folder.problem}`);
  const folderProblems = new Set((report.imported?.folders ?? []).map((f) => f.problem));
  const rejected = (report.imported?.files ?? []).filter((f) => f.problem && !folderProblems.has(f.problem));
  for (const file of rejected.slice(0, 10)) warnings.push(`earlier run's file not used: ${file.path}: ${file.problem}`);
  if (rejected.length > 10) warnings.push(`... and ${rejected.length - 10} more earlier run's files not used (run_report.json lists them all)`);
  return warnings;
}

function markdown(r: RunReport): string {
  const lines: string[] = [];
  if (r.synthetic) lines.push(`> **${syntheticBanner(r.synthetic).replace(/^# /, '')}**`, '');
  lines.push(`# virnucpro run ${r.workflowId}`, '');
  lines.push(`- input: \`${r.input}\``, `- output: \`${r.outputDir}\``);
  if (r.wallSeconds !== null) lines.push(`- wall time: ${r.wallSeconds.toFixed(1)} s`);
  if (r.webUi) lines.push(`- Temporal Web UI: ${r.webUi}`);
  lines.push(
    `- records: ${r.prepare.records}, chunks: ${r.prepare.chunks}, frames scored: ${r.results.frames}`,
    `- records called virus: ${r.results.calls.virus}, others: ${r.results.calls.others}, no frames: ${r.results.calls.no_frames}`,
    `- chunks called virus: ${r.results.virusChunks} of ${r.results.chunks}`,
    '',
    '## Steps',
    '| step | tasks | computed | from cache | failed attempts | wall s | busy s |',
    '|---|---|---|---|---|---|---|',
    ...Object.entries(r.steps).map(
      ([name, s]) => `| ${name} | ${s.tasks ?? '?'} | ${s.done} | ${s.cached} | ${s.failed} | ${s.wallSeconds?.toFixed(1) ?? '-'} | ${s.busySeconds?.toFixed(1) ?? '-'} |`,
    ),
    '',
    '## Devices',
    '| device | shards (from cache) | frames | seconds | frames/s | ESM-2 tokens/s | busy | idle between shards s | stalls | worker replacements | runtime restarts |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...Object.entries(r.devices).map(
      ([id, d]) =>
        `| ${id} | ${d.shards} (${d.shardsFromCache}) | ${d.frames} | ${d.seconds.toFixed(1)} | ${d.framesPerSecond.toFixed(1)} | ${d.esm2TokensPerSecond.toFixed(0)} | ` +
        `${(100 * d.busyFraction).toFixed(1)}% | ${d.idleGapsSeconds.toFixed(1)} | ${d.stalls} | ${d.workerReplacements} | ${d.restarts} |`,
    ),
    '',
  );
  if (r.imported) lines.push(...importedMarkdown(r.imported));
  if (r.warnings.length) lines.push('## Warnings', ...r.warnings.map((w) => `- ${w}`), '');
  lines.push('## Files', ...r.results.files.map((f) => `- \`${path.basename(f.file)}\`: ${f.rows} rows, sha256 ${f.sha256.slice(0, 16)}…`), '');
  return lines.join('\n');
}

function importedMarkdown(imported: LegacyReport): string[] {
  const used = imported.files.filter((f) => f.used);
  const n = imported.frames;
  return [
    '## Imported from earlier runs',
    `- DNABERT-S embeddings: ${imported.imported.dnabert} of ${n} frames imported, ${n - imported.imported.dnabert} computed`,
    `- ESM-2 embeddings: ${imported.imported.esm2} of ${n} frames imported, ${n - imported.imported.esm2} computed`,
    `- shards scored from imported embeddings alone (no model ran): ${imported.shardsComplete}`,
    `- files used: ${used.length} of ${imported.files.length}`,
    '',
    '| file | models | frames | used |',
    '|---|---|---|---|',
    ...imported.files.map((f) => `| \`${f.path}\` | ${f.models.join(', ') || '-'} | ${f.frames} | ${f.used ? 'yes' : `no: ${f.problem}`} |`),
    '',
  ];
}

export async function writeRunReport(report: RunReport): Promise<string[]> {
  const json = path.join(report.outputDir, RUN_REPORT_JSON);
  const md = path.join(report.outputDir, RUN_REPORT_MD);
  const html = path.join(report.outputDir, REPORT_HTML);
  // JSON has no comments: a synthetic run's report leads with a WARNING field instead.
  const body = report.synthetic ? { WARNING: syntheticBanner(report.synthetic).replace(/^# /, ''), ...report } : report;
  await writeFileAtomic(json, JSON.stringify(body, null, 2) + '\n');
  await writeFileAtomic(md, markdown(report));
  const [trace, telemetry] = await Promise.all([readTrace(report.outputDir), readTelemetry(report.outputDir)]);
  await writeFileAtomic(html, renderReportHtml({ report, trace, telemetry }));
  return [json, md, html];
}
