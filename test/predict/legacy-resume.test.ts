// `predict --resume` on what the original VirNucPro and the multi-GPU fork left behind, end to end
// on CPU: their folders are written the way each writes them (gpu-runtime/tests/legacy_fixtures.py)
// from a first run's own embeddings, so a resumed run must give that run's results. Covers a
// partial original run (only the missing ESM-2 work is computed), a complete fork run with no
// embedding weights at all (no model loaded), a bad file without weights (exit 2 naming it),
// and --force ignoring the files.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliEnvironment, type CliResult } from '../cli/harness';
import { python, repoRoot } from '../outputs/python';
import type { RunReport } from '../../activities/outputs/run-report';

const CPU = ['-d', 'cpu', '--no-progress', '--shard-frames', '40'];
const TINY = ['--synthetic-weights', 'tiny', ...CPU];
const FIXTURES = path.join(repoRoot, 'gpu-runtime', 'tests', 'legacy_fixtures.py');

function explain(result: CliResult): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

function report(dir: string): RunReport {
  return JSON.parse(fs.readFileSync(path.join(dir, 'run_report.json'), 'utf8')) as RunReport;
}

/** prediction_results.txt rows as [id, label, P(others), P(virus)]. */
function predictions(dir: string): Array<[string, string, number, number]> {
  return fs
    .readFileSync(path.join(dir, 'prediction_results.txt'), 'utf8')
    .trimEnd()
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .slice(1)
    .map((l) => {
      const [id, label, a, b] = l.split('\t');
      return [id, label, Number(a), Number(b)];
    });
}

function treeDigest(dir: string): string {
  return execFileSync('sh', ['-c', `cd '${dir}' && find . -type f -print0 | sort -z | xargs -0 sha256sum`], { encoding: 'utf8' });
}

describe('predict --resume: embeddings from the original VirNucPro and the fork', function () {
  this.timeout(600_000);
  let env: CliEnvironment;
  let reads: string;
  let firstRun: string;
  let frames: number;

  before(async () => {
    env = await CliEnvironment.create();
    const started = await env.run(['server', 'start']);
    assert.equal(started.code, 0, explain(started));
    const text = fs.readFileSync(path.join(repoRoot, 'examples', 'example_reads.fa'), 'utf8');
    reads = path.join(env.dir, 'data', 'sample.fasta');
    fs.mkdirSync(path.dirname(reads));
    fs.writeFileSync(reads, text);
    // The run whose embeddings the legacy folders carry (as if the original had computed them).
    firstRun = path.join(env.dir, 'first');
    const first = await env.run(['predict', reads, '-o', firstRun, '--embeddings', ...TINY]);
    assert.equal(first.code, 0, explain(first));
    frames = report(firstRun).results.frames;
    assert.ok(frames > 100, `enough frames for several legacy files (${frames})`);
  });
  after(async () => {
    await env.run(['server', 'stop']);
    await env.dispose();
  });

  function legacyRun(layout: string, input: string, outDir: string, extra: string[] = []): void {
    execFileSync(python, [FIXTURES, layout, input, outDir, path.join(firstRun, '.virnucpro', 'work'), '--per-file', '50', ...extra], { stdio: 'pipe' });
  }

  it('imports a partial original run and computes only what it lacked, with the same results', async () => {
    legacyRun('original', reads, path.join(env.dir, 'unused'), ['--esm-files', '1,2']);
    const before = treeDigest(path.dirname(reads));
    const out = path.join(env.dir, 'resumed');
    const result = await env.run(['predict', reads, '--resume', '-o', out, ...TINY]);
    assert.equal(result.code, 0, explain(result));
    assert.match(result.stdout, /from earlier runs' files: 100 ESM-2 and \d+ DNABERT-S embeddings/);
    const imported = report(out).imported!;
    assert.deepEqual(imported.imported, { dnabert: frames, esm2: 100 });
    assert.ok(imported.files.every((f) => f.used), JSON.stringify(imported.files.filter((f) => !f.used)));
    assert.equal(report(out).results.frames, frames);
    const ours = predictions(out);
    const theirs = predictions(firstRun);
    assert.deepEqual(ours.map((r) => [r[0], r[1]]), theirs.map((r) => [r[0], r[1]]), 'same frames, same labels');
    const worst = Math.max(...ours.map((r, i) => Math.abs(r[3] - theirs[i][3])));
    assert.ok(worst < 1e-5, `P(virus) within 1e-5 of the first run (max diff ${worst})`);
    assert.match(fs.readFileSync(path.join(out, 'run_report.md'), 'utf8'), /## Imported from earlier runs/);
    assert.equal(treeDigest(path.dirname(reads)), before, 'the legacy folders are only read');

    // --force ignores them: nothing imported.
    const forced = await env.run(['predict', reads, '--resume', '--force', '-o', out, ...TINY]);
    assert.equal(forced.code, 0, explain(forced));
    assert.equal(report(out).imported, null);
  });

  it('scores a complete fork run without any embedding weights, and names a bad file when weights are needed', async () => {
    const input = path.join(env.dir, 'fork', 'sample.fasta');
    fs.mkdirSync(path.dirname(input));
    fs.copyFileSync(reads, input);
    const out = path.join(env.dir, 'fork', 'out');
    legacyRun('fork-1.0', input, out);
    // The tiny classifier alone (the runtime's synthetic checkpoint), and an empty weights folder.
    const classifier = execFileSync(
      python,
      ['-c', 'from virnucpro_runtime import synthetic; print(synthetic.cached_checkpoints("tiny")["classifier"])'],
      { env: { ...env.env, VIRNUCPRO_STATE_DIR: env.stateDir }, encoding: 'utf8' },
    ).trim();
    const noWeights = { VIRNUCPRO_WEIGHTS: path.join(env.dir, 'no-weights') };
    const complete = await env.run(['predict', input, '--resume', '-o', out, '-p', classifier, ...CPU], noWeights);
    assert.equal(complete.code, 0, explain(complete));
    const r = report(out);
    assert.deepEqual(r.imported!.imported, { dnabert: frames, esm2: frames });
    assert.equal(r.imported!.shardsComplete, Math.ceil(frames / 40));
    assert.equal(r.steps.embed.tasks, 0, 'no shard went to a device');
    assert.deepEqual(predictions(out).map((p) => p[1]), predictions(firstRun).map((p) => p[1]));

    // One ESM-2 file cut short (and the merged file that also holds those vectors), and no
    // weights to compute its frames: exit 2, naming it.
    const esm = path.join(out, 'sample_protein', 'output_2_ESM.pt');
    fs.truncateSync(esm, 100);
    fs.truncateSync(path.join(out, 'sample_merged', 'output_2_merged.pt'), 100);
    const bad = await env.run(['predict', input, '--resume', '-o', out, '-p', classifier, ...CPU], noWeights);
    assert.equal(bad.code, 2, explain(bad));
    assert.match(bad.stderr, /50 frames have no usable ESM-2/);
    assert.ok(bad.stderr.includes(`${esm}: cannot be read safely`), bad.stderr);
  });
});
