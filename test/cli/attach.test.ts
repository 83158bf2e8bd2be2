// Run identity: the same command attaches to the run it started (while running and once
// completed) instead of starting another; --force starts a fresh run under the same id.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { CliEnvironment } from './harness';

function started(output: string): { verb: string; workflowId: string; runId: string } {
  const match = /(started|attached to) run (\S+) run_id=(\S+)/.exec(output);
  assert.ok(match, `no run line in:\n${output}`);
  return { verb: match[1], workflowId: match[2], runId: match[3] };
}

describe('cli: same command attaches, --force starts fresh', function () {
  this.timeout(180_000);
  let env: CliEnvironment;

  before(async () => {
    env = await CliEnvironment.create();
  });
  after(async () => env.dispose());

  it('attaches while running and after completion; --force gives a new run', async () => {
    const args = ['selftest', '--out', path.join(env.dir, 'run'), '--files', '6', '--sleep-ms', '1500', '--devices', 'cpu:1', '--no-progress'];
    const first = env.spawn(args);
    const original = started((await first.waitFor(/started run \S+ run_id=\S+/))[0]);
    const second = env.spawn(args);
    const whileRunning = started((await second.waitFor(/(started|attached to) run \S+ run_id=\S+/))[0]);
    assert.equal(whileRunning.verb, 'attached to');
    assert.equal(whileRunning.workflowId, original.workflowId);
    assert.equal(whileRunning.runId, original.runId);
    assert.equal((await first.exited).code, 0);
    assert.equal((await second.exited).code, 0);

    const third = await env.run(args);
    assert.equal(third.code, 0, third.stderr);
    assert.deepEqual(started(third.stderr), { ...original, verb: 'attached to' });
    assert.match(third.stdout, /selftest passed/);

    const forced = await env.run([...args, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    const fresh = started(forced.stderr);
    assert.equal(fresh.verb, 'started');
    assert.equal(fresh.workflowId, original.workflowId);
    assert.notEqual(fresh.runId, original.runId);

    const list = await env.run(['list']);
    assert.equal(list.code, 0, list.stderr);
    const rows = list.stdout.split('\n').filter((line) => line.startsWith(original.workflowId));
    assert.equal(rows.length, 2, `two executions (the original and the forced one):\n${list.stdout}`);
  });
});
