// The embedded Temporal server's life cycle: implicit (started for one command, stopped by its
// last user) and explicit (`server start` makes a daemon that outlives commands until `stop`).
import * as assert from 'node:assert/strict';
import { CliEnvironment, isAlive } from './harness';

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
});
