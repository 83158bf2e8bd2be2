// The embedded Temporal dev server dies with SIGKILL mid-run; the CLI restarts it on the same
// SQLite file and port, its workers reconnect, and the run completes with every output once.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { CliEnvironment, isAlive } from '../cli/harness';
import { activityTallies, assertOutputsExactlyOnce, FILES, runIdOf, selftestArgs, waitForDigests } from './selftest-run';

describe('durability: Temporal server killed mid-run', function () {
  this.timeout(240_000);
  let env: CliEnvironment;

  before(async () => {
    env = await CliEnvironment.create();
  });
  after(async () => env.dispose());

  it('continues on the restarted server (same state file, same port)', async () => {
    const out = path.join(env.dir, 'run');
    const cli = env.spawn(selftestArgs(out));
    const runId = runIdOf((await cli.waitFor(/started run \S+/))[0]);
    const doneAtKill = await waitForDigests(out, 4);
    const killedPid = env.serverPid();
    assert.ok(killedPid && isAlive(killedPid));
    process.kill(killedPid, 'SIGKILL');
    await cli.waitFor(/restarting it on the same state file and port/, 30_000);

    const result = await cli.exited;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(runIdOf(result.stderr), runId);
    const outputs = assertOutputsExactlyOnce(out);
    const tallies = await activityTallies(env, runId);
    console.log(`      killed the server (pid ${killedPid}) after ${doneAtKill}/${FILES} digest steps; outputs: ${JSON.stringify(outputs)}\n      ${tallies.join('\n      ')}`);
  });
});
