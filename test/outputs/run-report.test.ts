// The run report from made-up facts (no run, no Temporal): per-device figures from the write
// step's summary, the scheduler's counts and trace.tsv; report.html's GPU charts from telemetry
// with NVML figures; shards from the step cache kept off this run's timeline and idle figures.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deviceUse } from '../../activities/outputs/device-use';
import { renderReportHtml } from '../../activities/outputs/report-html';
import { deviceFigures, runWarnings, writeRunReport, type RunReport } from '../../activities/outputs/run-report';
import { SCORE_BINS } from '../../activities/outputs/prediction-outputs';
import { TELEMETRY_COLUMNS, writeTrace, type TelemetryRow, type TraceRow } from '../../activities/outputs/trace';
import { deliveredByDevice } from '../../activities/outputs/implementation';
import type { ShardResult } from '../../activities/gpu/embed-shard';
import type { DeviceReport } from '../../workflows/interpreter/messages';

const RUN_START = Date.parse('2026-12-07T10:00:00Z');
const at = (seconds: number) => RUN_START + seconds * 1000;

/** A computed shard on `device` from `start` to `end` seconds after the run started. */
function shard(name: string, device: string, start: number, end: number, peakMemoryBytes: number | null = null): ShardResult {
  return {
    file: { path: `/w/embed/results-${name}.arrow`, rows: 100, bytes: 1, sha256: 'x' },
    device,
    attempt: 1,
    frames: 100,
    seconds: end - start,
    esm2Tokens: 1000,
    dnabertTokens: 500,
    restarts: 0,
    startedAt: at(start),
    finishedAt: at(end),
    oomRetries: 0,
    peakMemoryBytes,
    numerics: 'fp32',
  } as ShardResult;
}

function traceOf(results: ShardResult[]): TraceRow[] {
  return results.map((r) => ({ shard: path.basename(r.file.path, '.arrow').replace(/^results-/, ''), device: r.device, attempt: r.attempt, start: r.startedAt, end: r.finishedAt, frames: r.frames, peakMemoryBytes: r.peakMemoryBytes, restarts: r.restarts }));
}

function scheduled(id: string, counts: Partial<DeviceReport>): [string, DeviceReport] {
  return [id, { state: 'active', inFlight: 0, done: 0, unitsDone: 0, unitsPerSecond: null, restarts: 0, stalls: 0, latestHeartbeat: null, ...counts }];
}

function reportOf(outputDir: string, devices: RunReport['devices'], notices: string[] = []): RunReport {
  const partial = {
    prepare: { records: 3, skippedEmpty: 0, duplicates: 0, chunks: 3, frames: 600, bases: 900 },
    devices,
    synthetic: null,
    results: { files: [], frames: 600, chunks: 3, virusChunks: 1, records: 3, calls: { virus: 1, others: 2, no_frames: 0 }, scoreHistogram: Array<number>(SCORE_BINS).fill(30) },
    imported: null,
    notices,
  };
  return {
    version: 1,
    workflowId: 'virnucpro-0123456789abcdef',
    runId: 'run-1',
    webUi: null,
    input: '/data/reads.fa',
    outputDir,
    started: new Date(RUN_START).toISOString(),
    finished: new Date(at(60)).toISOString(),
    wallSeconds: 60,
    settings: {},
    steps: {
      prepare: { tasks: 1, done: 1, cached: 0, failed: 0, wallSeconds: 2, busySeconds: 2, startedAt: new Date(at(1)).toISOString(), finishedAt: new Date(at(3)).toISOString(), failedAttempts: 0, timedOutAttempts: 0 },
    },
    ...partial,
    warnings: runWarnings(partial),
  };
}

/** The `<tr>` of `device` in the devices table, as its cells. */
function deviceRow(html: string, device: string): string[] {
  const table = /<table id="devices">([^]*?)<\/table>/.exec(html)?.[1] ?? '';
  const row = table.split('<tr>').find((r) => r.startsWith(`<td>${device}</td>`));
  assert.ok(row, `the devices table has ${device}`);
  return [...row.matchAll(/<td>([^<]*)<\/td>/g)].map((m) => m[1]);
}

describe('run report: per-device figures and report.html', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virnucpro-report-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('carries each device\'s stalls, worker replacements and idle gaps into run_report.json, .md and report.html', async () => {
    // gpu0: two shards with 3 s between them; gpu1: one shard; gpu2 stalled before finishing any.
    const results = [shard('000', 'h.gpu0', 5, 15, 2 ** 31), shard('001', 'h.gpu1', 5, 20), shard('002', 'h.gpu0', 18, 30, 3 * 2 ** 30)];
    await writeTrace(dir, results, null);
    const use = deviceUse(traceOf(results), RUN_START);
    const scheduler = Object.fromEntries([scheduled('h.gpu0', { restarts: 1, stalls: 2 }), scheduled('h.gpu1', {}), scheduled('h.gpu2', { state: 'failed', stalls: 3 })]);
    const report = reportOf(dir, deviceFigures(deliveredByDevice(results), scheduler, use), ['h.gpu2 stalled three times and was taken out']);
    await writeRunReport(report);

    const json = JSON.parse(fs.readFileSync(path.join(dir, 'run_report.json'), 'utf8')) as RunReport;
    assert.deepEqual(json.devices['h.gpu0'], {
      shards: 2, frames: 200, seconds: 22, framesPerSecond: 200 / 22, esm2TokensPerSecond: 2000 / 22, restarts: 0,
      workerReplacements: 1, stalls: 2, shardsFromCache: 0, busySeconds: 22, busyFraction: 22 / 25, idleGapsSeconds: 3, peakMemoryBytes: 3 * 2 ** 30,
    });
    assert.equal(json.devices['h.gpu1'].idleGapsSeconds, 0);
    assert.equal(json.devices['h.gpu1'].busyFraction, 15 / 25);
    assert.deepEqual([json.devices['h.gpu2'].shards, json.devices['h.gpu2'].stalls], [0, 3], 'a device that only stalled is listed');

    const md = fs.readFileSync(path.join(dir, 'run_report.md'), 'utf8');
    assert.match(md, /\| device \| shards \(from cache\) \|.*\| idle between shards s \| stalls \| worker replacements \| runtime restarts \|/);
    assert.ok(md.includes('| h.gpu0 | 2 (0) | 200 | 22.0 | 9.1 | 91 | 88.0% | 3.0 | 2 | 1 | 0 |'), md);

    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    assert.match(html, /<th>stalls<\/th><th>worker replacements<\/th><th>runtime restarts<\/th>/);
    assert.deepEqual(deviceRow(html, 'h.gpu0'), ['h.gpu0', '2', '0', '200', '9.1', '91', '88.0%', '3.0 s', '3.0 GiB', '2', '1', '0']);
    assert.deepEqual(deviceRow(html, 'h.gpu2').slice(1, 3), ['0', '0']);
    assert.equal(deviceRow(html, 'h.gpu2')[9], '3', 'its stalls');
    assert.ok(html.includes('h.gpu2 stalled three times and was taken out'), 'the notice is among the warnings');
  });

  it('draws GPU utilisation and memory per device from NVML telemetry, and says "not available" without it', () => {
    const results = [shard('000', 'h.gpu0', 5, 15), shard('001', 'h.gpu1', 5, 20)];
    const telemetry: TelemetryRow[] = results.flatMap((r, d) =>
      [6, 7, 8, 9].map((s) => ({ device: r.device, shard: String(d), time: at(s) / 1000, framesPerSecond: 10 + d, gpuUtilization: 0.5 + d / 4, gpuMemoryBytes: (d + 1) * 2 ** 30 })),
    );
    const report = reportOf(dir, deviceFigures(deliveredByDevice(results), {}, deviceUse(traceOf(results), RUN_START)));
    const html = renderReportHtml({ report, trace: traceOf(results), telemetry });
    for (const id of ['gpu-utilization', 'gpu-memory', 'frames-per-second']) {
      const figure = new RegExp(`<figure id="${id}">([^]*?)</figure>`).exec(html)?.[1];
      assert.ok(figure, `the ${id} chart is drawn`);
      for (const device of ['h.gpu0', 'h.gpu1']) assert.match(figure, new RegExp(`<path d="M[^"]+L[^"]+"[^>]*data-series="${device.replace('.', '\\.')}"`), `${id} has a line for ${device}`);
    }
    assert.match(/<figure id="gpu-utilization">[^]*?<\/figure>/.exec(html)![0], />60%</, 'the utilisation axis is in percent');
    assert.doesNotMatch(html, /not available/);

    const cpu = renderReportHtml({ report, trace: traceOf(results), telemetry: telemetry.map((t) => ({ ...t, gpuUtilization: null, gpuMemoryBytes: null })) });
    assert.match(cpu, /id="GPU-utilisation">GPU utilisation: not available/);
    assert.match(cpu, /id="GPU-memory">GPU memory: not available/);
    assert.match(cpu, /<figure id="frames-per-second">/, 'frames/s is drawn on CPUs too');
  });

  it('draws telemetry in time order, whatever order the shards ran in, and does not join samples across idle time', () => {
    // Shard 001 ran first (seconds 6-8), then 000 (30-32): telemetry.tsv lists them by shard.
    const results = [shard('000', 'h.gpu0', 29, 33), shard('001', 'h.gpu0', 5, 9)];
    const telemetry: TelemetryRow[] = [
      ...[30, 31, 32].map((s) => ({ device: 'h.gpu0', shard: '000', time: at(s) / 1000, framesPerSecond: 10, gpuUtilization: 0.9, gpuMemoryBytes: 2 ** 30 })),
      ...[6, 7, 8].map((s) => ({ device: 'h.gpu0', shard: '001', time: at(s) / 1000, framesPerSecond: 12, gpuUtilization: 0.8, gpuMemoryBytes: 2 ** 30 })),
    ];
    const report = reportOf(dir, deviceFigures(deliveredByDevice(results), {}, deviceUse(traceOf(results), RUN_START)));
    const html = renderReportHtml({ report, trace: traceOf(results), telemetry });
    const path = /<figure id="gpu-utilization">[^]*?<path d="([^"]+)"[^>]*class="series"/.exec(html)![1];
    const steps = [...path.matchAll(/([ML])([\d.]+),/g)].map((m) => [m[1], Number(m[2])] as [string, number]);
    assert.deepEqual(steps.map((s) => s[0]), ['M', 'L', 'L', 'M', 'L', 'L'], 'two runs of samples, not joined across the idle 22 s');
    const xs = steps.map((s) => s[1]);
    assert.deepEqual(xs, [...xs].sort((a, b) => a - b), 'drawn left to right');
  });

  it('keeps shards from the step cache off the timeline and out of the busy and idle figures', () => {
    // A resumed run: h.gpu0 computed two shards an hour before this run started, then two in it.
    const earlier = [shard('000', 'h.gpu0', -3600, -3590), shard('001', 'h.gpu0', -3590, -3580)];
    const now = [shard('002', 'h.gpu0', 5, 15), shard('003', 'h.gpu0', 17, 27)];
    const trace = traceOf([...earlier, ...now]);
    const use = deviceUse(trace, RUN_START);
    assert.deepEqual(use['h.gpu0'], { shardsComputed: 2, shardsFromCache: 2, busySeconds: 20, busyFraction: 20 / 22, idleGapsSeconds: 2, peakMemoryBytes: null });
    // A host whose clock is a second behind: its shard "started" before the run, but ended in it.
    assert.deepEqual(deviceUse(traceOf([shard('004', 'h.gpu1', -1, 9)]), RUN_START)['h.gpu1'].shardsFromCache, 0);
    // Without the run's start (unknown) every shard counts, the hour between them as idle.
    assert.equal(deviceUse(trace, null)['h.gpu0'].idleGapsSeconds, 3585 + 2);

    const telemetry: TelemetryRow[] = [-3595, 10].map((s) => ({ device: 'h.gpu0', shard: '0', time: at(s) / 1000, framesPerSecond: 10, gpuUtilization: 0.9, gpuMemoryBytes: 2 ** 30 }));
    const figures = deviceFigures(deliveredByDevice([...earlier, ...now]), {}, use);
    assert.equal(figures['h.gpu0'].shards, 4, 'the cached shards still count as delivered');
    assert.equal(figures['h.gpu0'].shardsFromCache, 2);
    const html = renderReportHtml({ report: reportOf(dir, figures), trace, telemetry });
    const timeline = /<figure id="timeline">([^]*?)<\/figure>/.exec(html)![1];
    const bars = [...timeline.matchAll(/<rect x="([\d.-]+)"[^>]*class="task"><title>([^<]*)<\/title>/g)];
    assert.deepEqual(bars.map((b) => b[2].split(':')[0]).sort(), ['002', '003', 'prepare'], 'only this run\'s tasks are drawn');
    assert.ok(bars.every((b) => Number(b[1]) >= 130), 'nothing before the run started');
    assert.match(html, /id="shards-from-cache">2 shard\(s\) came from the step cache/);
    assert.deepEqual(deviceRow(html, 'h.gpu0').slice(1, 3), ['4', '2']);
    const memory = /<figure id="gpu-memory">[^]*?<path d="([^"]+)"/.exec(html)![1];
    assert.doesNotMatch(memory, /L/, 'the earlier run\'s telemetry sample is not plotted: one point left');
  });
});
