// `virnucpro predict` end to end on CPU: real Temporal dev server, real workers in the CLI process,
// the real Python runtime with tiny synthetic weights. Covers the result files, determinism,
// attaching to and resuming a run, and bad input, each with its exit status and message.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Client, Connection } from '@temporalio/client';
import { CliEnvironment, type CliResult } from '../cli/harness';
import { runMemo } from '../../cli/runs';
import { TRACE_COLUMNS } from '../../activities/outputs/trace';
import { RUN_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { python, repoRoot } from '../outputs/python';

const TINY = ['--synthetic-weights', 'tiny', '-d', 'cpu', '--no-progress'];

/** The first `count` reads of the bundled example set, as [id, sequence]. */
function exampleReads(count: number): Array<[string, string]> {
  const text = fs.readFileSync(path.join(repoRoot, 'examples', 'example_reads.fa'), 'utf8');
  return text
    .split('>')
    .slice(1, count + 1)
    .map((entry) => {
      const [header, ...lines] = entry.split('\n');
      return [header.split(' ')[0], lines.join('')];
    });
}

function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').trimEnd().split('\n');
}

function explain(result: CliResult): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

describe('virnucpro predict (CPU, tiny synthetic weights)', function () {
  this.timeout(300_000);
  let env: CliEnvironment;
  let dir: string;
  let reads: string;

  before(async () => {
    env = await CliEnvironment.create();
    dir = env.dir;
    // One server for all runs of this file (each predict would otherwise start and stop its own).
    const started = await env.run(['server', 'start']);
    assert.equal(started.code, 0, explain(started));
    // CRLF line ends, lower case with IUPAC codes, a duplicate id and a record with no sequence.
    const picked = exampleReads(8);
    const records = picked.map(([id, seq], i) => {
      if (i === 1) return ['dup', seq.toLowerCase().replace(/a/g, (a, at: number) => (at % 50 === 0 ? 'n' : a))];
      if (i === 2) return ['dup', seq.slice(0, 120) + 'RYKM' + seq.slice(124)];
      return [id, seq];
    });
    const fasta = [...records.slice(0, 4), ['nothing_here', ''], ...records.slice(4)]
      .map(([id, seq]) => `>${id} test read\r\n${(seq.match(/.{1,70}/g) ?? []).join('\r\n')}\r\n`)
      .join('');
    reads = path.join(dir, 'reads.fa');
    fs.writeFileSync(reads, fasta);
  });
  after(async () => {
    await env.run(['server', 'stop']);
    await env.dispose();
  });

  const predict = (args: string[]) => env.run(['predict', ...args]);

  it('writes the result files with the original headers, one row per frame and per chunk', async () => {
    const out = path.join(dir, 'run-a');
    const result = await predict([reads, '-o', out, ...TINY]);
    assert.equal(result.code, 0, explain(result));
    assert.match(result.stderr, /SYNTHETIC WEIGHTS \(tiny\)/);
    assert.match(result.stderr, /empty sequence/i, 'the empty record is reported');
    // Nothing else computes here, so the models load at once, not after the server check.
    assert.match(fs.readFileSync(path.join(out, '.virnucpro', 'virnucpro.log'), 'utf8'), /models loaded in [\d.]+ s \(began with predict, before the Temporal server was up\)/);

    const predictions = lines(path.join(out, 'prediction_results.txt'));
    assert.match(predictions[0], /^# SYNTHETIC WEIGHTS/);
    assert.equal(predictions[1], 'Sequence_ID\tPrediction\tscore1\tscore2');
    const rows = predictions.slice(2).map((l) => l.split('\t'));
    assert.ok(rows.length >= 4, `frames scored: ${rows.length}`);
    for (const [id, call, s1, s2] of rows) {
      assert.match(id, /_chunk_\d+[FR][123]$/);
      assert.equal(call, Number(s2) > Number(s1) ? 'virus' : 'others');
      assert.ok(Math.abs(Number(s1) + Number(s2) - 1) < 1e-6);
    }
    assert.ok(rows.some(([id]) => id.startsWith('dup_2_chunk_')), 'the duplicate id was made unique');

    const chunks = lines(path.join(out, 'prediction_results_highestscore.csv'));
    assert.equal(chunks[1], 'Modified_ID\tIs_Virus');
    const chunkIds = chunks.slice(2).map((l) => l.split('\t')[0]);
    assert.deepEqual(chunkIds, [...new Set(rows.map(([id]) => id.slice(0, -2)))].sort());

    const summary = lines(path.join(out, 'sequence_summary.tsv'));
    assert.match(summary[1], /^record_id\toriginal_id\tlength/);
    assert.equal(summary.length - 2, 8, 'one row per kept record (the empty one is skipped)');
    assert.ok(fs.existsSync(path.join(out, 'id_map.tsv')));
    const report = JSON.parse(fs.readFileSync(path.join(out, 'run_report.json'), 'utf8'));
    assert.match(report.WARNING, /SYNTHETIC/);
    assert.equal(report.results.frames, rows.length);
    assert.equal(fs.existsSync(path.join(out, '.virnucpro', 'work')), false, 'intermediates removed after success');

    // trace.tsv: one row per shard the embed step computed (none cached in a first run), on the devices the report names.
    const [traceHeader, ...trace] = lines(path.join(out, 'trace.tsv')).filter((l) => !l.startsWith('#')).map((l) => l.split('\t'));
    assert.deepEqual(traceHeader, [...TRACE_COLUMNS]);
    const embed = report.steps.embed as { tasks: number; done: number; cached: number };
    assert.ok(embed.done >= 1 && embed.cached === 0, JSON.stringify(embed));
    assert.equal(trace.length, embed.done, 'a row per shard computed');
    const column = (name: (typeof TRACE_COLUMNS)[number]) => trace.map((row) => row[TRACE_COLUMNS.indexOf(name)]);
    assert.deepEqual(column('task_id'), trace.map((_, i) => String(i + 1)));
    assert.ok(column('step').every((s) => s === 'embed'));
    assert.equal(new Set(column('shard')).size, trace.length, 'each shard once');
    assert.equal(column('frames').reduce((sum, f) => sum + Number(f), 0), rows.length, 'the shards hold every frame scored');
    for (const [i, start] of column('start').entries()) assert.ok(Number(column('end')[i]) >= Number(start) && Number(start) >= Date.parse(report.started), 'computed in this run');
    assert.ok(column('exit').every((e) => e === '0'));
    assert.deepEqual([...new Set(column('device'))].sort(), Object.keys(report.devices).sort());
    for (const d of Object.values(report.devices) as Array<Record<string, number>>) {
      assert.deepEqual([d.stalls, d.workerReplacements, d.shardsFromCache], [0, 0, 0]);
      assert.ok(d.idleGapsSeconds >= 0 && d.busyFraction > 0, JSON.stringify(d));
    }

    // The finished run's memo and search attributes, as the Web UI's list shows them.
    const connection = await Connection.connect({ address: `127.0.0.1:${env.port}` });
    try {
      const description = await new Client({ connection, namespace: 'virnucpro' }).workflow.getHandle(report.workflowId, report.runId).describe();
      const progress = runMemo(description.memo).progress;
      assert.equal(progress?.state, 'completed');
      assert.equal(progress?.framesTotal, rows.length);
      assert.equal(progress?.framesDone, progress?.framesTotal, 'frames done = frames total');
      assert.equal(description.typedSearchAttributes.get(RUN_SEARCH_ATTRIBUTES.state), 'completed');
      assert.equal(description.typedSearchAttributes.get(RUN_SEARCH_ATTRIBUTES.framesDone), rows.length);
      assert.equal(description.typedSearchAttributes.get(RUN_SEARCH_ATTRIBUTES.framesTotal), rows.length);
      assert.equal(description.typedSearchAttributes.get(RUN_SEARCH_ATTRIBUTES.sample), 'reads');
    } finally {
      await connection.close();
    }
  });

  it('gives bit-identical scores on a second run, and attaches when the same command runs again', async () => {
    const again = await predict([reads, '-o', path.join(dir, 'run-b'), '--parallel', '--esm-batch-size', '4096', ...TINY]);
    assert.equal(again.code, 0, explain(again));
    assert.match(again.stderr, /--parallel is accepted for compatibility and ignored/);
    assert.match(again.stderr, /--esm-batch-size is accepted for compatibility and ignored: use --token-budget/);
    assert.equal(
      fs.readFileSync(path.join(dir, 'run-b', 'prediction_results.txt'), 'utf8'),
      fs.readFileSync(path.join(dir, 'run-a', 'prediction_results.txt'), 'utf8'),
    );
    const attach = await predict([reads, '-o', path.join(dir, 'run-a'), ...TINY]);
    assert.equal(attach.code, 0, explain(attach));
    assert.match(attach.stderr, /attached to run virnucpro-/);

    // The results deleted, the same command makes them again (the same bytes).
    const expected = fs.readFileSync(path.join(dir, 'run-b', 'prediction_results.txt'), 'utf8');
    fs.rmSync(path.join(dir, 'run-b', 'prediction_results.txt'));
    const remade = await predict([reads, '-o', path.join(dir, 'run-b'), ...TINY]);
    assert.equal(remade.code, 0, explain(remade));
    assert.match(remade.stderr, /prediction_results\.txt is missing\); running it again/);
    assert.equal(fs.readFileSync(path.join(dir, 'run-b', 'prediction_results.txt'), 'utf8'), expected);
  });

  it('prepares a read file edited in place again instead of serving the old frames from the cache', async () => {
    const edited = path.join(dir, 'edited.fa');
    fs.copyFileSync(reads, edited);
    const out = path.join(dir, 'run-edited');
    const first = await predict([edited, '-o', out, ...TINY]);
    assert.equal(first.code, 0, explain(first));
    const recordsBefore = lines(path.join(out, 'sequence_summary.tsv')).length - 2;
    const [, extra] = exampleReads(9)[8];
    fs.appendFileSync(edited, `>appended_read\n${extra}\n`);
    const second = await predict([edited, '-o', out, '--resume', ...TINY]);
    assert.equal(second.code, 0, explain(second));
    const summary = lines(path.join(out, 'sequence_summary.tsv'));
    assert.equal(summary.length - 2, recordsBefore + 1, 'the appended record is in the results');
    assert.ok(summary.some((l) => l.startsWith('appended_read\t')));
  });

  it('refuses an output folder that holds something else (exit 2), and --force replaces it', async () => {
    const out = path.join(dir, 'occupied');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const refused = await predict([reads, '-o', out, ...TINY]);
    assert.equal(refused.code, 2, explain(refused));
    assert.match(refused.stderr, new RegExp(`output folder ${out} already exists.*--resume.*--force`));
    const forced = await predict([reads, '-o', out, '-f', ...TINY]);
    assert.equal(forced.code, 0, explain(forced));
    assert.equal(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine', '--force removes only our own files');
  });

  it('rejects unusable input files with exit 2 and a message naming the file', async () => {
    const missing = await predict([path.join(dir, 'nope.fa'), ...TINY]);
    assert.equal(missing.code, 2, explain(missing));
    assert.match(missing.stderr, /nope\.fa: no such file/);

    const empty = path.join(dir, 'empty.fa');
    fs.writeFileSync(empty, '');
    const emptyResult = await predict([empty, ...TINY]);
    assert.equal(emptyResult.code, 2, explain(emptyResult));
    assert.match(emptyResult.stderr, /empty\.fa: the file is empty/);

    const protein = path.join(dir, 'protein.fa');
    fs.writeFileSync(protein, '>p1 a protein\nMKVLAAGIVGLLLAQWERTYIPASDFGHKLCVNM\n');
    const proteinResult = await predict([protein, '-o', path.join(dir, 'out-protein'), ...TINY]);
    assert.equal(proteinResult.code, 2, explain(proteinResult));
    assert.match(proteinResult.stderr, /protein\.fa.*p1.*protein/i);

    const genbank = path.join(dir, 'genbank.fa');
    fs.writeFileSync(genbank, '>lambda phage\n        1 gggcggcgac ctcgcgggtt ttcgctattt atgaaaattt\n');
    const genbankResult = await predict([genbank, '-o', path.join(dir, 'out-genbank'), ...TINY]);
    assert.equal(genbankResult.code, 2, explain(genbankResult));
    assert.match(genbankResult.stderr, /genbank\.fa: record 1 \(lambda\): "1" at position 1 of the sequence is not a nucleotide/);

    const truncated = path.join(dir, 'truncated.fa.gz');
    const gz = zlib.gzipSync(fs.readFileSync(reads));
    fs.writeFileSync(truncated, gz.subarray(0, Math.floor(gz.length / 2)));
    const truncatedResult = await predict([truncated, '-o', path.join(dir, 'out-gz'), ...TINY]);
    assert.equal(truncatedResult.code, 2, explain(truncatedResult));
    assert.match(truncatedResult.stderr, /truncated\.fa\.gz/);

    const binary = path.join(dir, 'binary.fa');
    fs.writeFileSync(binary, Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919 + 13) % 256)));
    const binaryResult = await predict([binary, '-o', path.join(dir, 'out-binary'), ...TINY]);
    assert.equal(binaryResult.code, 2, explain(binaryResult));
    assert.match(binaryResult.stderr, /binary\.fa: binary data/);
  });

  it('rejects a classifier file of the wrong shape with exit 2', async () => {
    const wrong = path.join(dir, 'wrong_model.pth');
    execFileSync(python, ['-c', `import torch; torch.save({"hidden_layer.weight": torch.zeros(8, 100), "hidden_layer.bias": torch.zeros(8)}, ${JSON.stringify(wrong)})`]);
    const result = await predict([reads, '-o', path.join(dir, 'out-weights'), '-m', 'custom', '-p', wrong, ...TINY]);
    assert.equal(result.code, 2, explain(result));
    assert.match(result.stderr, /wrong_model\.pth/);
  });

  it('says which weight files are missing when there are no real weights', async () => {
    // Empty caches too: predict looks in the Hugging Face and torch hub caches as the runtime does.
    const result = await env.run(['predict', reads, '-o', path.join(dir, 'out-real'), '-d', 'cpu'], {
      VIRNUCPRO_WEIGHTS: path.join(dir, 'no-weights'),
      HF_HOME: path.join(dir, 'no-hf'),
      HF_HUB_CACHE: '',
      TORCH_HOME: path.join(dir, 'no-torch'),
    });
    assert.equal(result.code, 2, explain(result));
    assert.match(result.stderr, /500_model\.pth/);
    assert.ok(result.stderr.includes(path.join(dir, 'no-hf', 'hub', 'models--facebook--esm2_t36_3B_UR50D', 'snapshots')), explain(result));
    assert.match(result.stderr, /esm2_t36_3B_UR50D/);
    assert.match(result.stderr, /DNABERT-S/);
    assert.match(result.stderr, /--synthetic-weights tiny/);
  });

  describe('a full disk while writing results', () => {
    let mount: string | null = null;
    before(function () {
      const candidate = path.join(dir, 'small-disk');
      fs.mkdirSync(candidate);
      try {
        // A real, small filesystem (needs root, as CI containers have); skipped rather than imitated.
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', candidate], { stdio: 'pipe' });
        mount = candidate;
      } catch {
        this.skip();
      }
    });
    after(() => {
      if (mount) execFileSync('umount', [mount]);
    });

    it('fails with exit 2 naming the file, keeps the completed steps, and a rerun finishes from the cache', async () => {
      const out = path.join(mount!, 'out');
      const work = path.join(dir, 'work-on-big-disk');
      const args = [reads, '-o', out, '--work-dir', work, ...TINY];
      fs.mkdirSync(out);
      // leave one 4 KiB page for run.json: the result files find the disk full
      fs.writeFileSync(path.join(mount!, 'filler'), Buffer.alloc(56 * 1024));
      const full = await predict(args);
      assert.equal(full.code, 2, explain(full));
      assert.match(full.stderr, /cannot write .*small-disk\/out\/prediction_results.*the disk is full \(ENOSPC\)/);
      assert.deepEqual(fs.readdirSync(out).filter((f) => !f.startsWith('.')), [], 'no partial result file');

      fs.rmSync(path.join(mount!, 'filler'));
      const resumed = await predict([...args, '--resume']);
      assert.equal(resumed.code, 0, explain(resumed));
      const report = JSON.parse(fs.readFileSync(path.join(out, 'run_report.json'), 'utf8'));
      assert.equal(report.steps.prepare.cached, 1, 'prepare came from the cache');
      assert.equal(report.steps.embed.cached, report.steps.embed.tasks, 'every shard came from the cache');
      // Those shards carry the failed run's times: counted as from the cache, kept off this run's timeline.
      const devices = Object.values(report.devices) as Array<{ shards: number; shardsFromCache: number; busySeconds: number }>;
      assert.ok(devices.every((d) => d.shardsFromCache === d.shards && d.busySeconds === 0), JSON.stringify(report.devices));
      assert.equal(devices.reduce((sum, d) => sum + d.shardsFromCache, 0), report.steps.embed.tasks);
      const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
      assert.match(html, new RegExp(`id="shards-from-cache">${report.steps.embed.tasks} shard\\(s\\) came from the step cache`));
      assert.equal(fs.readFileSync(path.join(out, 'prediction_results.txt'), 'utf8'), fs.readFileSync(path.join(dir, 'run-a', 'prediction_results.txt'), 'utf8'));
    });
  });
});
