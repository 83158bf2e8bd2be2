// What a user sees in a browser, in a real headless Chromium (Debian's package; scripts/test.sh
// installs it): the Temporal Web UI of the embedded dev server lists a finished run, filters it by
// its search attributes and shows its page; the run's report.html, opened from disk, has its plots
// and its numbers. Skipped without Chromium, except under scripts/test.sh or CI.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CliEnvironment } from '../cli/harness';
import { repoRoot } from '../outputs/python';

const CHROMIUM = process.env.VIRNUCPRO_CHROMIUM ?? '/usr/bin/chromium';
const run = promisify(execFile);

/** The DOM of `url` once its scripts and requests have settled, as headless Chromium renders it. */
async function renderedDom(url: string, profile: string): Promise<string> {
  const { stdout } = await run(
    CHROMIUM,
    [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--virtual-time-budget=20000', '--dump-dom', url,
    ],
    { maxBuffer: 64 << 20, timeout: 90_000 },
  );
  return stdout;
}

describe('what a user sees in a browser (headless Chromium)', function () {
  this.timeout(300_000);
  let env: CliEnvironment;
  let out: string;
  let runId: string;
  let runExecution: string;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      // scripts/test.sh (VIRNUCPRO_REQUIRE_BROWSER) and CI install it: there a missing browser is a failure, not a skip.
      if (process.env.CI || process.env.VIRNUCPRO_REQUIRE_BROWSER) throw new Error(`${CHROMIUM} is missing: scripts/test.sh installs Debian's chromium`);
      this.skip();
    }
    env = await CliEnvironment.create({ webUi: true });
    const started = await env.run(['server', 'start']);
    assert.equal(started.code, 0, started.stderr);
    out = path.join(env.dir, 'S01-results');
    const reads = path.join(env.dir, 'S01.fa');
    writeFileSync(reads, readFileSync(path.join(repoRoot, 'examples', 'example_reads.fa'), 'utf8').split('\n').slice(0, 120).join('\n') + '\n');
    const predicted = await env.run(['predict', reads, '-o', out, '--synthetic-weights', 'tiny', '-d', 'cpu', '--no-progress']);
    assert.equal(predicted.code, 0, predicted.stderr);
    ({ workflowId: runId, runId: runExecution } = JSON.parse(readFileSync(path.join(out, 'run_report.json'), 'utf8')) as { workflowId: string; runId: string });
  });
  after(async () => {
    if (!env) return;
    await env.run(['server', 'stop']);
    await env.dispose();
  });

  it('finds the run in the Web UI list, filtered by sample, and opens its page', async () => {
    const ui = `http://127.0.0.1:${env.uiPort}/namespaces/virnucpro/workflows`;
    const list = await renderedDom(ui, path.join(env.dir, 'chromium-1'));
    assert.ok(list.includes(runId), 'the workflow list shows the run');
    const filter = (sample: string) => `${ui}?query=${encodeURIComponent(`VirnucproSample="${sample}"`)}`;
    assert.ok((await renderedDom(filter('S01'), path.join(env.dir, 'chromium-2'))).includes(runId), 'filtering by the sample finds it');
    assert.ok(!(await renderedDom(filter('S02'), path.join(env.dir, 'chromium-3'))).includes(runId), 'another sample does not');
    const page = await renderedDom(`${ui}/${runId}/${runExecution}/history`, path.join(env.dir, 'chromium-4'));
    assert.ok(page.includes(runId) && /Completed/.test(page), 'the run page shows the completed run');
  });

  it('opens report.html from disk with its plots and key numbers', async () => {
    const report = JSON.parse(readFileSync(path.join(out, 'run_report.json'), 'utf8')) as { results: { frames: number; calls: { virus: number } } };
    const dom = await renderedDom(`file://${path.join(out, 'report.html')}`, path.join(env.dir, 'chromium-5'));
    for (const id of ['timeline', 'frames-per-second', 'score-histogram', 'record-calls', 'totals', 'devices', 'steps', 'files']) {
      assert.match(dom, new RegExp(`id="${id}"`), `the report has its ${id}`);
    }
    assert.ok((dom.match(/<svg/g) ?? []).length >= 4, 'plots are inline SVG');
    assert.match(dom, /<th>idle between shards<\/th>.*<th>stalls<\/th><th>worker replacements<\/th><th>runtime restarts<\/th>/, 'the devices table has idle gaps, stalls and restarts');
    assert.match(dom, /GPU utilisation: not available/, 'NVML metrics say they are not available on a CPU host');
    assert.ok(dom.includes(`<td>frames scored</td><td>${report.results.frames.toLocaleString('en-US')}</td>`), 'the frames scored');
    assert.ok(dom.includes(runId), 'the run id');
    assert.match(dom, /SYNTHETIC WEIGHTS \(tiny\)/);
  });
});
