// The CLI (client and its in-process workers) dies with SIGKILL mid-run; running the same
// command again attaches to the same run, which completes with every output exactly once.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { CliEnvironment, isAlive } from '../cli/harness';
import { activityTallies, assertOutputsExactlyOnce, digestStepsDone, FILES, runIdOf, selftestArgs, waitForDigests } from './selftest-run';

describe('durability: CLI killed mid-run', function () {
  this.timeout(240_000);
  let env: CliEnvironment;

  before(async () => {
    env = await CliEnvironment.create();
  });
  after(async () => env.dispose());

  it('resumes the same run when the command is run again', async () => {
    const out = path.join(env.dir, 'run');
    const first = env.spawn(selftestArgs(out));
    const runId = runIdOf((await first.waitFor(/started run \S+/))[0]);
    const doneAtKill = await waitForDigests(out, 4);
    first.kill('SIGKILL');
    await first.exited;
    const serverPid = env.serverPid();
    assert.ok(serverPid && isAlive(serverPid), 'the dev server outlives the killed CLI');

    const second = await env.run(selftestArgs(out));
    assert.equal(second.code, 0, second.stderr);
    assert.equal(runIdOf(second.stderr), runId);
    assert.match(second.stderr, /attached to run/);
    const outputs = assertOutputsExactlyOnce(out);
    assert.equal(digestStepsDone(out), FILES);
    assert.ok(!isAlive(serverPid), 'the last user stopped the server it did not start as a daemon');

    const tallies = await activityTallies(env, runId);
    console.log(`      killed the CLI after ${doneAtKill}/${FILES} digest steps; outputs: ${JSON.stringify(outputs)}\n      ${tallies.join('\n      ')}`);
  });
});
