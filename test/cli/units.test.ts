// The CLI's pure pieces: argv syntax, run identity, settings resolution, device selection,
// progress arithmetic. No processes, no Temporal.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { commonShape, parseCommand, UsageError, type CommandSpec } from '../../cli/args';
import { loadSettings, packageRoot, runUiLink } from '../../cli/config';
import { RUN_SEARCH_ATTRIBUTES, searchAttributeArgs } from '../../workflows/search-attributes';
import { discoverDevices, gpusBusy } from '../../cli/devices';
import { predictSpec, runtimePrecision } from '../../cli/commands/predict-options';
import { deviceTable, EtaEstimator, progressLine, taskTotals } from '../../cli/progress';
import { runView, type LiveTask } from '../../cli/live';
import { canonicalJson, runIdFor } from '../../cli/runs';
import type { ProgressReport } from '../../workflows/interpreter/messages';

const schema = z.object({
  _: z.tuple([z.string()]).or(z.tuple([z.string(), z.string()])),
  count: z.coerce.number().int().default(1),
  progress: z.boolean().default(true),
  tag: z.array(z.string()).default([]),
  ...commonShape,
});
const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro test',
  summary: 'test',
  positionals: [
    { name: 'A', help: 'a' },
    { name: 'B', help: 'b', optional: true },
  ],
  options: [
    { long: 'count', short: 'n', value: 'N', help: 'n' },
    { long: 'progress', help: 'p' },
    { long: 'tag', value: 'T', repeatable: true, help: 't' },
  ],
  schema,
};

describe('cli units', () => {
  describe('predict precision', () => {
    it('runs fp32 on CPUs and with --precision fp32, the fast path on GPUs otherwise; fp8 only on GPUs', () => {
      const parse = (...extra: string[]) => parseCommand(predictSpec, ['reads.fa', ...extra])!.precision;
      assert.equal(parse(), 'bf16');
      assert.equal(runtimePrecision(false, parse()), null);
      assert.equal(runtimePrecision(true, parse()), 'fp32');
      assert.equal(runtimePrecision(false, parse('--precision', 'fp32')), 'fp32');
      assert.equal(runtimePrecision(false, parse('--precision=fp8')), 'fp8');
      assert.throws(() => runtimePrecision(true, 'fp8'), (e: Error) => e instanceof UsageError && /fp8 needs a GPU .*8\.9/.test(e.message));
      assert.throws(() => parse('--precision', 'fp16'), (e: Error) => e instanceof UsageError && /precision/.test(e.message));
      assert.throws(() => parse('--exact'), (e: Error) => e instanceof UsageError && /exact/.test(e.message));
    });
  });

  describe('argv parsing', () => {
    it('understands long, short, inline, negated, repeated options and --', () => {
      const parsed = parseCommand(spec, ['x', '--count=3', '--no-progress', '--tag', 'a', '--tag=b', '-v', '--', '-y']);
      assert.deepEqual(parsed, { _: ['x', '-y'], count: 3, progress: false, tag: ['a', 'b'], verbose: true, quiet: false });
      assert.equal(parseCommand(spec, ['x', '-n5'])?.count, 5);
    });

    it('rejects bad input with messages that name the option or argument', () => {
      assert.throws(() => parseCommand(spec, ['x', '--nope']), (e: Error) => e instanceof UsageError && /unknown option --nope/.test(e.message));
      assert.throws(() => parseCommand(spec, ['x', '--count']), /--count needs a value/);
      assert.throws(() => parseCommand(spec, ['x', '--count', '1.5']), /--count:/);
      assert.throws(() => parseCommand(spec, []), /missing A/);
      assert.throws(() => parseCommand(spec, ['x', 'y', 'z']), /unexpected argument 'z'/);
      assert.throws(() => parseCommand(spec, ['x', '--progress=yes']), /takes no value/);
    });
  });

  describe('run identity', () => {
    it('ignores key order and undefined values but not values', () => {
      const a = { input: { path: '/r.fa', bytes: 10 }, params: { length: 500, model: undefined } };
      const b = { params: { length: 500 }, input: { bytes: 10, path: '/r.fa' } };
      assert.equal(canonicalJson(a), canonicalJson(b));
      assert.equal(runIdFor('predict', a), runIdFor('predict', b));
      assert.notEqual(runIdFor('predict', a), runIdFor('predict', { ...b, params: { length: 300 } }));
      assert.match(runIdFor('predict', a), /^predict-[0-9a-f]{16}$/);
    });
  });

  describe('settings', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virnucpro-settings-'));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const write = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };

    it('uses the embedded server from temporal-dev.yml, with -c overrides, under XDG_STATE_HOME', () => {
      const file = write('dev.yml', 'dev_server:\n  port: 9999\n  dynamic_config:\n    limit.historyCount.error: 100\n');
      const settings = loadSettings(file, { XDG_STATE_HOME: dir });
      assert.equal(settings.temporal.kind, 'embedded');
      assert.equal(settings.address, '127.0.0.1:9999');
      assert.equal(settings.stateDir, path.join(dir, 'virnucpro'));
      if (settings.temporal.kind !== 'embedded') return;
      assert.equal(settings.temporal.server.dbFile, path.join(dir, 'virnucpro', 'temporal.sqlite'));
      assert.equal(settings.temporal.server.dynamicConfig['limit.historyCount.error'], 100);
      assert.ok('limit.historySize.error' in settings.temporal.server.dynamicConfig, 'defaults kept beside overrides');
      assert.match(runUiLink(settings, 'w 1', 'r') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/namespaces\/virnucpro\/workflows\/w%201\/r\/history$/);
    });

    it('prefers a cluster from the environment and checks its TLS settings', () => {
      const settings = loadSettings(undefined, { TEMPORAL_ADDRESS: 'temporal.example:7233', TEMPORAL_NAMESPACE: 'lab', XDG_STATE_HOME: dir });
      assert.deepEqual(settings.temporal, { kind: 'cluster', address: 'temporal.example:7233', tls: undefined });
      assert.equal(settings.namespace, 'lab');
      assert.throws(() => loadSettings(undefined, { TEMPORAL_ADDRESS: 'x:1', TEMPORAL_TLS_CERT: '/c.pem' }), /both a client certificate and its key/);
    });

    it('cli/README.md registers every run search attribute with its type, and its cluster example loads', () => {
      const readme = fs.readFileSync(path.join(packageRoot, 'cli', 'README.md'), 'utf8');
      const declared = searchAttributeArgs().filter((arg) => arg !== '--search-attribute');
      assert.equal(declared.length, Object.keys(RUN_SEARCH_ATTRIBUTES).length);
      for (const pair of declared) {
        const [name, type] = pair.split('=');
        assert.ok(readme.includes(`search-attribute create --namespace genomics --name ${name} --type ${type}\n`), `cli/README.md registers ${name} as ${type}`);
      }
      const example = /```yaml\n(# virnucpro\.yml[^]*?)```/.exec(readme)?.[1];
      assert.ok(example, 'cli/README.md has the cluster config example');
      const settings = loadSettings(write('cluster.yml', example), { XDG_STATE_HOME: dir });
      assert.equal(settings.temporal.kind, 'cluster');
      assert.equal(settings.namespace, 'genomics');
      assert.deepEqual(settings.temporal.kind === 'cluster' && settings.temporal.tls, { cert: '/etc/virnucpro/client.pem', key: '/etc/virnucpro/client.key', ca: '/etc/virnucpro/ca.pem', serverName: undefined });
      assert.match(runUiLink(settings, 'w') ?? '', /^https:\/\/temporal\.example\.org\/namespaces\/genomics\/workflows\/w$/);
    });

    it('names the file and the key when a config file is wrong', () => {
      assert.throws(() => loadSettings(write('bad.yml', 'dev_server: [\n'), {}), (e: Error) => e instanceof UsageError && e.message.includes('bad.yml'));
      assert.throws(() => loadSettings(write('typo.yml', 'dev_sever:\n  port: 1\n'), {}), /typo\.yml/);
      assert.throws(() => loadSettings(write('port.yml', 'dev_server:\n  port: 70000\n'), {}), /dev_server\.port/);
      assert.throws(() => loadSettings(path.join(dir, 'missing.yml'), {}), /cannot read configuration file/);
    });
  });

  describe('devices', () => {
    it('takes --devices, then CUDA_VISIBLE_DEVICES', () => {
      assert.deepEqual(discoverDevices('cpu:3').devices.map((d) => [d.index, d.kind]), [[0, 'cpu'], [1, 'cpu'], [2, 'cpu']]);
      assert.deepEqual(discoverDevices('2,0').devices.map((d) => [d.index, d.cudaVisible]), [[2, '2'], [0, '0']]);
      assert.throws(() => discoverDevices('0,0'), /listed twice/);
      assert.throws(() => discoverDevices('gpu1'), /not a device index/);
      const masked = discoverDevices(undefined, { CUDA_VISIBLE_DEVICES: '5,7' });
      assert.deepEqual(masked.devices.map((d) => [d.index, d.cudaVisible]), [[0, '5'], [1, '7']]);
      assert.equal(discoverDevices(undefined, { CUDA_VISIBLE_DEVICES: '-1' }).devices[0].kind, 'cpu');
    });

    it('sees a GPU as busy when nvidia-smi lists a compute process, and cannot tell without nvidia-smi', () => {
      assert.equal(gpusBusy(() => ''), false);
      assert.equal(gpusBusy(() => '\n'), false);
      assert.equal(gpusBusy(() => '12345\n67890\n'), true);
      assert.equal(
        gpusBusy(() => {
          throw new Error('nvidia-smi: not found');
        }),
        null,
      );
    });
  });

  describe('progress', () => {
    const beat = (details: Record<string, number>) => ({ process: 'embed', item: 0, device: 'h.gpu0', details, at: '' });
    const step = (total: number | null, done: number, extra: Partial<ProgressReport['steps'][string]> = {}) => ({
      total, pending: 0, running: 0, done, cached: 0, failed: 0, unitsTotal: null, unitsDone: 0, latestHeartbeat: null, ...extra,
    });
    const device = (state: 'active' | 'left', done: number, unitsDone: number) => ({
      state, inFlight: 1, done, unitsDone, unitsPerSecond: 30, restarts: 0, stalls: 0, latestHeartbeat: beat({ frames_done: 1 }),
    });
    const report: ProgressReport = {
      pipeline: 'p',
      state: 'running',
      steps: {
        prepare: step(1, 0, { cached: 1 }),
        embed: step(10, 4, { pending: 4, running: 2, unitsTotal: 1000, unitsDone: 400 }),
        write: step(null, 0),
      },
      devices: { 'h.gpu0': device('active', 2, 200), 'h.gpu1': device('active', 2, 200), 'h.gpu2': device('left', 0, 0) },
      notices: [],
      outputs: null,
      error: null,
    };
    const live = (device: string, phase: string, framesDone: number, framesPerSecond: number | null): LiveTask => ({
      device, shard: '00004', phase, framesDone, framesTotal: 100, framesPerSecond, gpuUtilization: 0.97, gpuMemoryBytes: 2 ** 31, heartbeatAt: null, attempt: 1,
    });

    it('sums tasks over steps', () => {
      assert.deepEqual(taskTotals(report), { tasksDone: 5, tasksCached: 1, tasksTotal: 11, tasksRunning: 2, tasksFailed: 0, totalKnown: false });
    });

    it('adds each device\'s running shard to what it finished, and estimates the time left from the live rates', () => {
      const view = runView(report, [live('h.gpu0', 'computing', 60, 50), live('h.gpu1', 'queued', 0, null), live('h.gpu1', 'computing', 40, 20)]);
      assert.deepEqual(view.devices.map((d) => [d.id, d.framesDone, d.framesPerSecond, d.phase]), [
        ['h.gpu0', 260, 50, 'computing'],
        ['h.gpu1', 240, 20, 'computing'],
        ['h.gpu2', 0, null, 'left'],
      ]);
      // gpu0: 40 frames of its shard left at 50/s; gpu1: 100 queued + 60 running at 20/s; gpu2 has none.
      assert.deepEqual(view.devices.map((d) => d.etaSeconds), [40 / 50, 160 / 20, 0]);
      assert.match(deviceTable(view)[0], /ETA/);
      assert.match(deviceTable(view)[2], /\bh\.gpu1\b.*\b8s\b/);
      assert.equal(view.framesDone, 500);
      assert.equal(view.framesTotal, 1000);
      assert.equal(view.framesPerSecond, 70);
      assert.ok(Math.abs(view.etaSeconds! - 500 / 70) < 1e-9);
      assert.match(progressLine(report, view, undefined), /500\/1,000 frames, 70 frames\/s, ETA 7s \| gpu0 computing 50 fr\/s 97% 2\.0 GiB/);
    });

    it('estimates time left from the rate seen while watching', () => {
      const eta = new EtaEstimator();
      assert.equal(eta.update(10, 110, 0), undefined, 'no rate yet');
      assert.equal(eta.update(20, 110, 10_000), 90, '1 task/s, 90 left');
      assert.equal(eta.update(110, 110, 20_000), 0);
    });
  });
});
