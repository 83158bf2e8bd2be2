// One run, three "hosts" (network namespaces with their own hostnames, a veth link each to the
// host of the Temporal dev server, one shared output folder): `virnucpro worker` on the second and
// third host joins a running `predict` and takes shards; then one of them is killed and the
// other's network is cut mid-run. The run finishes on what is left, with the same results as a
// run on one host. Needs root (network namespaces), as CI has; skipped elsewhere.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliEnvironment, type CliProcess } from '../cli/harness';
import { repoRoot } from '../outputs/python';

const TINY = ['--synthetic-weights', 'tiny', '-d', 'cpu', '--no-progress', '--shard-frames', '100'];

function sh(...args: string[]): string {
  return execFileSync(args[0], args.slice(1), { stdio: 'pipe', encoding: 'utf8' });
}

/** The example reads, `copies` times over with fresh ids: a few thousand frames. */
function manyReads(file: string, copies: number): void {
  const text = fs.readFileSync(path.join(repoRoot, 'examples', 'example_reads.fa'), 'utf8');
  fs.writeFileSync(file, Array.from({ length: copies }, (_, i) => text.replace(/^>(\S+)/gm, `>c${i}_$1`)).join(''));
}

interface Host {
  name: string;
  netns: string;
  /** Our end of its link (cut it to take the host off the network). */
  link: string;
  address: string;
}

/** Namespaces and links an earlier run of this test left when it was killed: their addresses
 * (10.231.x.1/24) would shadow this run's. */
function removeStaleHosts(): void {
  for (const name of sh('ip', 'netns', 'list').split('\n').map((l) => l.split(' ')[0]).filter((n) => STALE_NETNS.test(n))) sh('ip', 'netns', 'del', name);
  for (const line of sh('ip', '-o', 'link').split('\n')) {
    const link = /^\d+: ([^@:]+)/.exec(line)?.[1];
    if (link && STALE_LINK.test(link)) sh('ip', 'link', 'del', link);
  }
}
const STALE_NETNS = /^vp[0-9a-f]{4}host[bc]$/;
const STALE_LINK = /^vp[0-9a-f]{4}[01]a$/;

describe('durability: more hosts join a run, and one vanishes', function () {
  this.timeout(600_000);
  let env: CliEnvironment;
  const hosts: Host[] = [];
  const workers: CliProcess[] = [];

  before(async function () {
    if (process.getuid?.() !== 0) this.skip();
    try {
      sh('ip', '-V');
    } catch {
      this.skip();
    }
    removeStaleHosts();
    env = await CliEnvironment.create({ ip: '0.0.0.0' });
    const tag = randomBytes(2).toString('hex');
    for (const [i, name] of ['hostb', 'hostc'].entries()) {
      const host = { name, netns: `vp${tag}${name}`, link: `vp${tag}${i}a`, address: `10.231.${i + 1}.1` };
      sh('ip', 'netns', 'add', host.netns);
      hosts.push(host);
      sh('ip', 'link', 'add', host.link, 'type', 'veth', 'peer', 'name', `vp${tag}${i}b`);
      sh('ip', 'link', 'set', `vp${tag}${i}b`, 'netns', host.netns);
      sh('ip', 'addr', 'add', `${host.address}/24`, 'dev', host.link);
      sh('ip', 'link', 'set', host.link, 'up');
      sh('ip', 'netns', 'exec', host.netns, 'ip', 'addr', 'add', `10.231.${i + 1}.2/24`, 'dev', `vp${tag}${i}b`);
      sh('ip', 'netns', 'exec', host.netns, 'ip', 'link', 'set', `vp${tag}${i}b`, 'up');
      sh('ip', 'netns', 'exec', host.netns, 'ip', 'link', 'set', 'lo', 'up');
    }
    const started = await env.run(['server', 'start']);
    assert.equal(started.code, 0, started.stderr);
  });

  after(async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    for (const host of hosts) {
      try {
        sh('ip', 'link', 'del', host.link);
      } catch {
        // gone with its namespace
      }
      sh('ip', 'netns', 'del', host.netns);
    }
    if (env) {
      await env.run(['server', 'stop']);
      await env.dispose();
    }
  });

  /** `virnucpro worker` on `host`: its own hostname and state, Temporal reached over its link. */
  function startWorker(host: Host): CliProcess {
    const worker = env.spawn(
      ['worker', '--devices', 'cpu', '--announce-interval', '2'],
      { TEMPORAL_ADDRESS: `${host.address}:${env.port}`, TEMPORAL_NAMESPACE: 'virnucpro', XDG_STATE_HOME: path.join(env.dir, `state-${host.name}`) },
      ['ip', 'netns', 'exec', host.netns, 'unshare', '--uts', 'sh', '-c', `hostname ${host.name} && exec "$0" "$@"`],
    );
    workers.push(worker);
    return worker;
  }

  it('takes work on every host, loses nothing when two of them vanish, and gives the same results', async () => {
    const reads = path.join(env.dir, 'reads.fa');
    manyReads(reads, 10);
    // The same input on one host, for the results to compare with.
    const single = await env.run(['predict', reads, '-o', path.join(env.dir, 'one-host'), ...TINY]);
    assert.equal(single.code, 0, single.stderr);

    for (const host of hosts) await startWorker(host).waitFor(/worker ready/, 120_000);
    const out = path.join(env.dir, 'three-hosts');
    const cli = env.spawn(['predict', reads, '-o', out, ...TINY]);
    const runId = (await cli.waitFor(/started run (\S+)/))[1];

    // Both other hosts have computed shards of this run: now one dies and one drops off the network.
    const shardsOn = async (device: string) => {
      const status = await env.run(['status', runId, '--json']);
      const parsed = JSON.parse(status.stdout) as { progress: { devices: Record<string, { done: number }> } | null };
      return parsed.progress?.devices[device]?.done ?? 0;
    };
    const deadline = Date.now() + 240_000;
    while ((await shardsOn('hostb.gpu0')) < 1 || (await shardsOn('hostc.gpu0')) < 1) {
      assert.ok(Date.now() < deadline, 'both other hosts took work');
      await new Promise((r) => setTimeout(r, 500));
    }
    workers[1].kill('SIGKILL'); // hostc: its processes killed
    sh('ip', 'link', 'set', hosts[0].link, 'down'); // hostb: its network cut

    const finished = await cli.exited;
    assert.equal(finished.code, 0, finished.stderr);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'run_report.json'), 'utf8')) as { devices: Record<string, { shards: number }> };
    assert.ok((report.devices['hostb.gpu0']?.shards ?? 0) >= 1 && (report.devices['hostc.gpu0']?.shards ?? 0) >= 1, `results came from every host: ${JSON.stringify(report.devices)}`);
    for (const file of ['prediction_results.txt', 'prediction_results_highestscore.csv', 'sequence_summary.tsv']) {
      assert.equal(fs.readFileSync(path.join(out, file), 'utf8'), fs.readFileSync(path.join(env.dir, 'one-host', file), 'utf8'), `${file} as on one host`);
    }
  });
});
