// A scatter of 10,000 trivial tasks stays far below Temporal's history limits (50k events /
// 50 MB per history): the interpreter splits it into child batch workflows.
import assert from 'node:assert/strict';
import { ActivityRegistry } from '../../activities/registry';
import { definePipeline } from '../../workflows/dsl/define';
import { runPipeline } from '../../workflows/interpreter/run-pipeline';
import { cpuQueue } from '../../workflows/queues';
import { useHarness } from '../support/harness';
import { testImplementations } from '../support/test-implementations';

const TASKS = 10_000;
const BATCH = 1_000;

describe('interpreter: 10,000-task fan-out', function () {
  // The dev server's per-task work dominates: 10k tasks took 56-100 s on this shared 2-core machine.
  this.timeout(400_000);

  const harness = useHarness({ registry: new ActivityRegistry(testImplementations), devices: [], cpuSlots: 100 }, 'virnucpro-fanout-');

  it('runs every task once and keeps the parent and each child history small', async () => {
    const dag = definePipeline({
      name: 'fanout',
      inputs: { count: 'number' },
      processes: {
        range: { implementation: 'test.range', resource: 'cpu', cache: false, inputs: { count: { from: 'inputs.count', type: 'number' } }, outputs: { numbers: 'number[]' } },
        double: {
          implementation: 'test.work',
          resource: 'cpu',
          cache: false,
          inputs: { n: { from: 'range.numbers', type: 'number', mode: 'scatter' } },
          outputs: { doubled: 'number' },
        },
        total: { implementation: 'test.sum', resource: 'cpu', cache: false, inputs: { values: { from: 'double.doubled', type: 'number[]', mode: 'gather' } }, outputs: { total: 'number' } },
      },
      outputs: { total: 'total.total' },
    });
    const workflowId = `fanout-${Date.now()}`;
    const started = Date.now();
    const handle = await harness.env.client.workflow.start(runPipeline, {
      taskQueue: cpuQueue(harness.workers.prefix),
      workflowId,
      args: [{ dag, inputs: { count: TASKS }, workDir: harness.workDir, taskQueuePrefix: harness.workers.prefix, devices: [], options: { scatterBatchSize: BATCH, maxConcurrentBatches: 2 } }],
    });
    const result = await handle.result();
    const seconds = (Date.now() - started) / 1000;
    assert.equal(result.outputs.total, TASKS * (TASKS - 1));
    assert.equal(result.progress.steps.double.done, TASKS);

    const histories = [{ id: workflowId, history: await handle.fetchHistory() }];
    for (let batch = 0; batch < TASKS / BATCH; batch++) {
      const id = `${workflowId}/double/batch-${batch}`;
      histories.push({ id, history: await harness.env.client.workflow.getHandle(id).fetchHistory() });
    }
    const sizes = histories.map(({ id, history }) => ({ id, events: history.events?.length ?? 0, bytes: JSON.stringify(history).length }));
    const parent = sizes[0];
    const largestChild = sizes.slice(1).reduce((a, b) => (b.events > a.events ? b : a));
    console.log(
      `      ${TASKS} tasks in ${seconds.toFixed(1)} s; parent history ${parent.events} events / ${(parent.bytes / 1e6).toFixed(2)} MB; ` +
        `largest child ${largestChild.events} events / ${(largestChild.bytes / 1e6).toFixed(2)} MB`,
    );
    for (const { id, events, bytes } of sizes) {
      assert.ok(events < 10_000, `${id}: ${events} events`);
      assert.ok(bytes < 10e6, `${id}: ${bytes} bytes`);
    }
  });
});
