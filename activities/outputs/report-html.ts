// report.html: the run on one self-contained page (no script, no network: inline CSS and SVG
// drawn here), for someone who was not watching. Plots: a timeline of the steps and of every
// shard on its device, each device's frames/s, GPU utilisation and memory over time (from the
// runtime's once-a-second samples, telemetry.tsv), the distribution of the frames' P(virus),
// and the calls per input record. Tables: totals, steps (computed, cached, failed and timed-out
// attempts), devices (busy share, idle gaps, stalls, restarts), warnings, files.
import type { RunReport } from './run-report';
import type { TelemetryRow, TraceRow } from './trace';
import { computedInRun } from './device-use';
import { SCORE_BINS } from './prediction-outputs';

export interface ReportData {
  report: RunReport;
  trace: TraceRow[];
  telemetry: TelemetryRow[];
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const W = 760;
const H = 220;
const M = { left: 60, right: 16, top: 14, bottom: 34 };

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Round axis steps: 1, 2 or 5 times a power of ten, about `count` of them up to `max`. */
function ticks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max * 1.0001; v += step) out.push(v);
  return out;
}

function axes(xMax: number, yMax: number, xLabel: string, yLabel: string, yFormat: (v: number) => string): string {
  const x = (v: number) => M.left + (v / (xMax || 1)) * (W - M.left - M.right);
  const y = (v: number) => H - M.bottom - (v / (yMax || 1)) * (H - M.top - M.bottom);
  const parts = [`<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" class="axis"/>`, `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" class="axis"/>`];
  for (const t of ticks(xMax)) parts.push(`<text x="${x(t).toFixed(1)}" y="${H - M.bottom + 14}" text-anchor="middle">${esc(fmt(t))}</text>`);
  for (const t of ticks(yMax)) {
    parts.push(`<line x1="${M.left}" y1="${y(t).toFixed(1)}" x2="${W - M.right}" y2="${y(t).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${M.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${esc(yFormat(t))}</text>`);
  }
  parts.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 4}" text-anchor="middle" class="label">${esc(xLabel)}</text>`);
  parts.push(`<text x="12" y="${(M.top + H - M.bottom) / 2}" text-anchor="middle" class="label" transform="rotate(-90 12 ${(M.top + H - M.bottom) / 2})">${esc(yLabel)}</text>`);
  return parts.join('');
}

function svg(id: string, title: string, body: string, legend: string[] = []): string {
  const keys = legend.map((name, i) => `<span class="key"><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(name)}</span>`).join('');
  return `<figure id="${id}"><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${body}</svg>${keys ? `<div class="legend">${keys}</div>` : ''}</figure>`;
}

/** Samples further apart than this (seconds; the runtime samples once a second) are not joined:
 * the device did not compute in between. */
const LINE_BREAK_S = 5;

/** One line per series of (x, y) points, drawn in x order whatever the points' order (telemetry
 * comes shard by shard, and shards do not run in their numbers' order); a gap in x breaks it. */
function lineChart(id: string, title: string, series: Array<{ name: string; points: Array<[number, number]> }>, xLabel: string, yLabel: string, yFormat = (v: number) => fmt(v)): string {
  const xMax = Math.max(1, ...series.flatMap((s) => s.points.map(([x]) => x)));
  const yMax = Math.max(1e-9, ...series.flatMap((s) => s.points.map(([, y]) => y))) * 1.05;
  const x = (v: number) => M.left + (v / xMax) * (W - M.left - M.right);
  const y = (v: number) => H - M.bottom - (v / yMax) * (H - M.top - M.bottom);
  const lines = series.map((s, i) => {
    const points = [...s.points].sort((a, b) => a[0] - b[0]);
    const d = points.map(([px, py], k) => `${k && px - points[k - 1][0] <= LINE_BREAK_S ? 'L' : 'M'}${x(px).toFixed(1)},${y(py).toFixed(1)}`).join('');
    return `<path d="${d}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.5" class="series" data-series="${esc(s.name)}"/>`;
  });
  return svg(id, title, axes(xMax, yMax, xLabel, yLabel, yFormat) + lines.join(''), series.map((s) => s.name));
}

function barChart(id: string, title: string, bars: Array<{ label: string; value: number }>, xLabel: string, yLabel: string): string {
  const yMax = Math.max(1, ...bars.map((b) => b.value)) * 1.05;
  const slot = (W - M.left - M.right) / Math.max(1, bars.length);
  const y = (v: number) => H - M.bottom - (v / yMax) * (H - M.top - M.bottom);
  const parts = [axes(0, yMax, xLabel, yLabel, (v) => fmt(v)).replace(/<text[^>]*>0<\/text>/, '')];
  bars.forEach((b, i) => {
    const x0 = M.left + i * slot + slot * 0.1;
    parts.push(`<rect x="${x0.toFixed(1)}" y="${y(b.value).toFixed(1)}" width="${(slot * 0.8).toFixed(1)}" height="${(H - M.bottom - y(b.value)).toFixed(1)}" fill="${PALETTE[0]}" class="bar" data-value="${b.value}"><title>${esc(`${b.label}: ${fmt(b.value)}`)}</title></rect>`);
    if (bars.length <= 10 || i % Math.ceil(bars.length / 10) === 0) {
      parts.push(`<text x="${(x0 + slot * 0.4).toFixed(1)}" y="${H - M.bottom + 14}" text-anchor="middle">${esc(b.label)}</text>`);
    }
  });
  return svg(id, title, parts.join(''));
}

interface Span {
  row: string;
  label: string;
  start: number;
  end: number;
  colour: string;
}

/** Nextflow-style timeline: one row per step or device, one bar per task. */
function timeline(id: string, title: string, spans: Span[], origin: number): string {
  const rows = [...new Set(spans.map((s) => s.row))];
  const height = M.top + M.bottom + rows.length * 26;
  const xMax = Math.max(1, ...spans.map((s) => (s.end - origin) / 1000));
  const x = (ms: number) => 130 + ((ms - origin) / 1000 / xMax) * (W - 130 - M.right);
  const parts: string[] = [];
  rows.forEach((row, i) => parts.push(`<text x="124" y="${M.top + i * 26 + 17}" text-anchor="end">${esc(row)}</text>`));
  for (const s of spans) {
    const i = rows.indexOf(s.row);
    const width = Math.max(1, x(s.end) - x(s.start));
    parts.push(`<rect x="${x(s.start).toFixed(1)}" y="${M.top + i * 26 + 4}" width="${width.toFixed(1)}" height="18" fill="${s.colour}" class="task"><title>${esc(`${s.label}: ${((s.end - s.start) / 1000).toFixed(1)} s`)}</title></rect>`);
    if (width > 34) parts.push(`<text x="${(x(s.start) + 3).toFixed(1)}" y="${M.top + i * 26 + 17}" class="inbar">${esc(s.label)}</text>`);
  }
  for (const t of ticks(xMax)) parts.push(`<text x="${x(origin + t * 1000).toFixed(1)}" y="${height - M.bottom + 14}" text-anchor="middle">${esc(fmt(t))}</text>`);
  parts.push(`<text x="${(130 + W) / 2}" y="${height - 4}" text-anchor="middle" class="label">seconds since the run started</text>`);
  return `<figure id="${id}"><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg></figure>`;
}

function table(header: string[], rows: Array<Array<string | number>>, id?: string): string {
  const head = header.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join('')}</tr>`).join('');
  return `<table${id ? ` id="${id}"` : ''}><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

export function renderReportHtml({ report: r, trace, telemetry }: ReportData): string {
  const runStart = r.started ? Date.parse(r.started) : null;
  const origin = runStart ?? Math.min(...trace.map((t) => t.start), Date.now());
  const devices = [...new Set([...trace.map((t) => t.device), ...Object.keys(r.devices)])].sort();
  const colourOf = (device: string) => PALETTE[devices.indexOf(device) % PALETTE.length];
  // Shards from the step cache carry an earlier run's times: not drawn on this run's time axes.
  const computed = trace.filter((t) => computedInRun(t, runStart));
  const fromCache = trace.length - computed.length;

  const spans: Span[] = [];
  for (const [name, s] of Object.entries(r.steps)) {
    if (name !== 'embed' && s.startedAt && s.finishedAt) spans.push({ row: name, label: name, start: Date.parse(s.startedAt), end: Date.parse(s.finishedAt), colour: '#888' });
  }
  for (const t of computed) spans.push({ row: `embed ${t.device.slice(t.device.lastIndexOf('.') + 1)}`, label: t.shard, start: Math.max(t.start, origin), end: t.end, colour: colourOf(t.device) });

  const perDevice = (value: (row: TelemetryRow) => number | null) =>
    devices
      .map((device) => ({
        name: device,
        points: telemetry.filter((row) => row.device === device && row.time * 1000 >= origin && value(row) !== null).map((row) => [row.time - origin / 1000, value(row)!] as [number, number]),
      }))
      .filter((s) => s.points.length > 0);
  const rates = perDevice((row) => row.framesPerSecond);
  const utilisation = perDevice((row) => row.gpuUtilization);
  const memory = perDevice((row) => (row.gpuMemoryBytes === null ? null : row.gpuMemoryBytes / 2 ** 30));
  const notAvailable = (what: string) => `<p class="na" id="${what.replace(/\W+/g, '-')}">${esc(what)}: not available (no GPU telemetry on these devices: CPU runtimes, or NVML missing)</p>`;

  const histogram = r.results.scoreHistogram.map((value, i) => ({ label: (i / SCORE_BINS).toFixed(2), value }));
  const calls = [
    { label: 'virus', value: r.results.calls.virus },
    { label: 'others', value: r.results.calls.others },
    { label: 'no frames', value: r.results.calls.no_frames },
  ];

  const banner = r.synthetic ? `<p class="warning" id="synthetic">SYNTHETIC WEIGHTS (${esc(r.synthetic)}): these scores come from random test weights, not from the VirNucPro, ESM-2 or DNABERT-S models.</p>` : '';
  const link = r.webUi ? `<a href="${esc(r.webUi)}">${esc(r.webUi)}</a>` : 'none (a cluster without a configured UI address)';
  const facts = table(['', ''], [
    ['input', r.input],
    ['output folder', r.outputDir],
    ['started', r.started ?? '-'],
    ['wall time', r.wallSeconds === null ? '-' : `${fmt(r.wallSeconds, 1)} s`],
    ['records', fmt(r.prepare.records)],
    ['chunks', fmt(r.prepare.chunks)],
    ['frames scored', fmt(r.results.frames)],
    ['records called virus / others / no frames', `${fmt(r.results.calls.virus)} / ${fmt(r.results.calls.others)} / ${fmt(r.results.calls.no_frames)}`],
    ['chunks called virus', `${fmt(r.results.virusChunks)} of ${fmt(r.results.chunks)}`],
  ], 'totals');
  const steps = table(
    ['step', 'tasks', 'computed', 'from cache', 'failed attempts', 'timed-out attempts', 'wall s', 'busy s'],
    Object.entries(r.steps).map(([name, s]) => [name, s.tasks ?? '?', s.done, s.cached, s.failedAttempts, s.timedOutAttempts, s.wallSeconds === null ? '-' : fmt(s.wallSeconds, 1), s.busySeconds === null ? '-' : fmt(s.busySeconds, 1)]),
    'steps',
  );
  const deviceRows = table(
    ['device', 'shards', 'from cache', 'frames', 'frames/s', 'ESM-2 tokens/s', 'busy', 'idle between shards', 'peak memory', 'stalls', 'worker replacements', 'runtime restarts'],
    devices.map((id) => {
      const d = r.devices[id];
      if (!d) return [id, ...Array<string>(11).fill('-')];
      return [
        id,
        d.shards,
        d.shardsFromCache,
        fmt(d.frames),
        fmt(d.framesPerSecond, 1),
        fmt(d.esm2TokensPerSecond),
        `${(100 * d.busyFraction).toFixed(1)}%`,
        `${fmt(d.idleGapsSeconds, 1)} s`,
        d.peakMemoryBytes ? `${(d.peakMemoryBytes / 2 ** 30).toFixed(1)} GiB` : '-',
        d.stalls,
        d.workerReplacements,
        d.restarts,
      ];
    }),
    'devices',
  );
  const warnings = r.warnings.length ? `<ul id="warnings">${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '<p id="warnings">none</p>';
  const imported = r.imported
    ? `<p>DNABERT-S: ${fmt(r.imported.imported.dnabert)} of ${fmt(r.imported.frames)} frames imported; ESM-2: ${fmt(r.imported.imported.esm2)} imported; ` +
      `${fmt(r.imported.shardsComplete)} shard(s) scored with no model run.</p>` +
      table(['file', 'models', 'frames', 'used'], r.imported.files.map((f) => [f.path, f.models.join(', ') || '-', fmt(f.frames), f.used ? 'yes' : `no: ${f.problem}`]), 'imported')
    : '';
  const files = table(['file', 'rows', 'sha256'], r.results.files.map((f) => [f.file.slice(f.file.lastIndexOf('/') + 1), fmt(f.rows), f.sha256]), 'files');

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>virnucpro run ${esc(r.workflowId)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:800px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}th{background:#f6f6f6}
figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}svg text{font-size:11px;fill:#333}svg .label{font-size:12px}
.axis{stroke:#444}.grid{stroke:#e6e6e6}.inbar{fill:#fff;font-size:10px}.legend .key{margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}.warning{background:#fde;border:1px solid #c66;padding:8px}.na{color:#777}
</style></head><body>
<h1>virnucpro run <code>${esc(r.workflowId)}</code></h1>
${banner}
<p>Temporal Web UI: ${link}</p>
<h2>Totals</h2>${facts}
<h2>Timeline</h2>${timeline('timeline', 'Steps and shards over time (one row per device for the embed step)', spans, origin)}
${fromCache ? `<p class="na" id="shards-from-cache">${fmt(fromCache)} shard(s) came from the step cache (computed by an earlier run): not drawn, and not in the busy and idle figures.</p>` : ''}
<h2>Devices</h2>${deviceRows}
${rates.length ? lineChart('frames-per-second', 'frames/s per device (over its last 10 s of work)', rates, 'seconds since the run started', 'frames/s') : notAvailable('frames per second')}
${utilisation.length ? lineChart('gpu-utilization', 'GPU utilisation per device (NVML)', utilisation, 'seconds since the run started', 'busy', (v) => `${Math.round(v * 100)}%`) : notAvailable('GPU utilisation')}
${memory.length ? lineChart('gpu-memory', 'GPU memory held per device', memory, 'seconds since the run started', 'GiB', (v) => fmt(v, 0)) : notAvailable('GPU memory')}
<h2>Scores</h2>
${barChart('score-histogram', 'Distribution of the frames\u2019 virus score P(virus)', histogram, 'P(virus)', 'frames')}
${barChart('record-calls', 'Calls per input record', calls, '', 'records')}
<h2>Steps</h2>${steps}
${imported ? `<h2>Imported from earlier runs</h2>${imported}` : ''}
<h2>Warnings</h2>${warnings}
<h2>Files</h2>${files}
<p class="na">Written by virnucpro; the same facts as JSON in run_report.json, per task in trace.tsv, per second in telemetry.tsv.</p>
</body></html>
`;
}
