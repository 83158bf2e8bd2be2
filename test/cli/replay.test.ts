// cancel + replay: a cancelled run is run again under the same id; steps it completed come
// from the step cache, the rest is computed, and the report is complete.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { z } from 'zod';
import { CliEnvironment } from './harness';
import { digestStepsDone, waitForDigests } from '../durability/selftest-run';

const statusJson = z.object({
  status: z.string(),
  progress: z.object({ steps: z.record(z.string(), z.object({ done: z.number(), cached: z.number(), total: z.number().nullable() })) }),
});

describe('cli: cancel and replay', function () {
  this.timeout(180_000);
  let env: CliEnvironment;

  before(async () => {
    env = await CliEnvironment.create();
  });
  after(async () => env.dispose());

  it('replays a cancelled run, reusing its completed steps', async () => {
    const out = path.join(env.dir, 'run');
    const cli = env.spawn(['selftest', '--out', out, '--files', '8', '--sleep-ms', '1500', '--devices', 'cpu:1', '--no-progress']);
    const runId = (await cli.waitFor(/started run (\S+)/))[1];
    await waitForDigests(out, 2);
    const cancel = await env.run(['cancel', runId]);
    assert.equal(cancel.code, 0, cancel.stderr);
    const cancelled = await cli.exited;
    assert.equal(cancelled.code, 1, 'a cancelled run is a failure for the command that followed it');
    const doneBefore = digestStepsDone(out);

    const replay = await env.run(['replay', runId, '--devices', 'cpu:1', '--no-progress']);
    assert.equal(replay.code, 0, replay.stderr);
    const status = await env.run(['status', runId, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const report = statusJson.parse(JSON.parse(status.stdout));
    assert.equal(report.status, 'COMPLETED');
    const digest = report.progress.steps.digest;
    assert.equal(digest.done + digest.cached, 8);
    assert.ok(digest.cached >= doneBefore - 1 && digest.cached >= 1, `cached ${digest.cached} of ${doneBefore} digests done before the cancel`);
    assert.equal(report.progress.steps.generate.cached, 1);

    const again = await env.run(['replay', runId]);
    assert.equal(again.code, 2, 'a completed run cannot be replayed');
    assert.match(again.stderr, /only failed, cancelled/);
    console.log(`      cancelled after ${doneBefore}/8 digests; replay: ${digest.cached} cached, ${digest.done} computed`);
  });
});
