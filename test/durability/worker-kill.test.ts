// A `virnucpro worker` process dies with SIGKILL mid-run while the CLI only follows the run
// (--no-workers); a new worker process takes over and the run completes, every output once.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { CliEnvironment } from '../cli/harness';
import { activityTallies, assertOutputsExactlyOnce, digestStepsDone, FILES, runIdOf, selftestArgs, waitForDigests } from './selftest-run';

describe('durability: worker killed mid-run', function () {
  this.timeout(240_000);
  let env: CliEnvironment;

  before(async () => {
    env = await CliEnvironment.create();
  });
  after(async () => env.dispose());

  it('completes on a replacement worker', async () => {
    const out = path.join(env.dir, 'run');
    const workerArgs = ['worker', '--devices', 'cpu:2', '--announce-interval', '2'];
    const firstWorker = env.spawn(workerArgs);
    await firstWorker.waitFor(/worker ready/);
    const cli = env.spawn(selftestArgs(out, ['--no-workers']));
    const runId = runIdOf((await cli.waitFor(/started run \S+/))[0]);
    const doneAtKill = await waitForDigests(out, 4);
    firstWorker.kill('SIGKILL');
    await firstWorker.exited;
    const stalledFor = 3000;
    await new Promise((r) => setTimeout(r, stalledFor));
    const doneWhileNoWorker = digestStepsDone(out);

    const secondWorker = env.spawn(workerArgs);
    const result = await cli.exited;
    assert.equal(result.code, 0, result.stderr);
    const outputs = assertOutputsExactlyOnce(out);
    secondWorker.kill('SIGTERM');
    assert.equal((await secondWorker.exited).code, 0, 'a worker stops cleanly on SIGTERM');

    const tallies = await activityTallies(env, runId);
    console.log(
      `      killed the worker after ${doneAtKill}/${FILES} digest steps, ${doneWhileNoWorker} done ${stalledFor / 1000} s later (no worker); outputs: ${JSON.stringify(outputs)}\n      ${tallies.join('\n      ')}`,
    );
  });
});
