// The built-in selftest pipeline end to end on a real Temporal dev server: cpu steps, a gpu
// scatter over two fake devices, an independent cpu step beside it, and a gather.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ActivityRegistry } from '../../activities/registry';
import { selftestImplementations } from '../../activities/selftest/implementations';
import { fileRef } from '../../activities/steps/implementation';
import { runPipeline } from '../../workflows/interpreter/run-pipeline';
import { progressQuery } from '../../workflows/interpreter/messages';
import { selftest } from '../../workflows/pipelines/selftest';
import { cpuQueue } from '../../workflows/queues';
import { useHarness } from '../support/harness';

describe('interpreter: selftest pipeline', function () {
  this.timeout(120_000);
  const devices = ['testhost.gpu0', 'testhost.gpu1'];

  const harness = useHarness({ registry: new ActivityRegistry(selftestImplementations), devices }, 'virnucpro-selftest-');

  it('runs every step, spreads the gpu scatter over both devices and gathers the digests', async () => {
    const files = 8;
    const handle = await harness.env.client.workflow.start(runPipeline, {
      taskQueue: cpuQueue(harness.workers.prefix),
      workflowId: `selftest-${Date.now()}`,
      args: [{ dag: selftest, inputs: { settings: { files, lines: 32, sleepMs: 300 } }, workDir: harness.workDir, taskQueuePrefix: harness.workers.prefix, devices }],
    });
    const result = await handle.result();

    const report = fileRef.parse(result.outputs.report);
    const content = JSON.parse(await readFile(report.path, 'utf8'));
    assert.equal(content.files, files);
    assert.equal(content.rows, files * 32);
    assert.equal(content.digests.length, files);
    assert.match(content.digests[0], /^[0-9a-f]{64} {2}file-00000\.txt$/);

    const progress = await handle.query(progressQuery);
    assert.equal(progress.state, 'completed');
    assert.deepEqual(
      Object.fromEntries(Object.entries(progress.steps).map(([name, s]) => [name, [s.total, s.done, s.pending, s.running, s.failed]])),
      { generate: [1, 1, 0, 0, 0], digest: [files, files, 0, 0, 0], measure: [1, 1, 0, 0, 0], combine: [1, 1, 0, 0, 0] },
    );
    const perDevice = devices.map((d) => progress.devices[d].done);
    assert.equal(perDevice[0] + perDevice[1], files);
    assert.ok(perDevice.every((n) => n > 0), `both devices work: ${perDevice}`);
    assert.ok(progress.steps.digest.latestHeartbeat, 'heartbeat details reach the progress query');
    assert.deepEqual(progress.outputs, result.outputs);
  });
});
