// The interpreter on a real dev server: independent steps overlap, scatter/gather in item order
// (inline and through child batch workflows), failures surface with the process named.
import { WorkflowFailedError } from '@temporalio/client';
import assert from 'node:assert/strict';
import { ActivityRegistry } from '../../activities/registry';
import { definePipeline } from '../../workflows/dsl/define';
import type { Dag, JsonValue } from '../../workflows/dsl/types';
import { runPipeline } from '../../workflows/interpreter/run-pipeline';
import { InterpreterOptions, progressQuery } from '../../workflows/interpreter/messages';
import { cpuQueue } from '../../workflows/queues';
import { useHarness } from '../support/harness';
import { journal, testImplementations } from '../support/test-implementations';

describe('interpreter: DAG runs', function () {
  this.timeout(120_000);

  const harness = useHarness({ registry: new ActivityRegistry(testImplementations), devices: [] }, 'virnucpro-interpreter-');

  let runs = 0;
  function start(dag: Dag, inputs: Record<string, JsonValue>, options: Partial<InterpreterOptions> = {}) {
    return harness.env.client.workflow.start(runPipeline, {
      taskQueue: cpuQueue(harness.workers.prefix),
      workflowId: `interpreter-${Date.now()}-${runs++}`,
      args: [{ dag, inputs, workDir: harness.workDir, taskQueuePrefix: harness.workers.prefix, devices: [], options }],
    });
  }

  it('runs independent steps concurrently and joins them', async () => {
    const dag = definePipeline({
      name: 'diamond',
      inputs: { x: 'number', y: 'number' },
      processes: {
        left: { implementation: 'test.work', resource: 'cpu', cache: false, params: { ms: 800 }, inputs: { n: { from: 'inputs.x', type: 'number' } }, outputs: { doubled: 'number' } },
        right: { implementation: 'test.work', resource: 'cpu', cache: false, params: { ms: 800 }, inputs: { n: { from: 'inputs.y', type: 'number' } }, outputs: { doubled: 'number' } },
        join: {
          implementation: 'test.add',
          resource: 'cpu',
          inputs: { a: { from: 'left.doubled', type: 'number' }, b: { from: 'right.doubled', type: 'number' } },
          outputs: { total: 'number' },
        },
      },
      outputs: { total: 'join.total' },
    });
    // Numbers no other test of this process uses: the journal is shared by every test file in this process.
    const x = 5_000_000 + Math.floor(Math.random() * 1000);
    const result = await (await start(dag, { x, y: x + 1 })).result();
    assert.equal(result.outputs.total, 2 * x + 2 * (x + 1));
    const [left, right] = [x, x + 1].map((n) => journal.find((e) => e.item === n && e.outcome === 'completed')!);
    assert.ok(left.start < right.end && right.start < left.end, 'the two independent steps overlapped in time');
  });

  for (const [label, batchSize] of [
    ['inline', 500],
    ['in child batch workflows', 7],
  ] as const) {
    it(`scatters and gathers in item order (${label})`, async () => {
      const dag = definePipeline({
        name: 'fan',
        inputs: { count: 'number' },
        processes: {
          range: { implementation: 'test.range', resource: 'cpu', inputs: { count: { from: 'inputs.count', type: 'number' } }, outputs: { numbers: 'number[]' } },
          double: {
            implementation: 'test.work',
            resource: 'cpu',
            inputs: { n: { from: 'range.numbers', type: 'number', mode: 'scatter' } },
            outputs: { doubled: 'number' },
          },
          total: { implementation: 'test.sum', resource: 'cpu', inputs: { values: { from: 'double.doubled', type: 'number[]', mode: 'gather' } }, outputs: { total: 'number' } },
        },
        outputs: { doubled: 'double.doubled', total: 'total.total' },
      });
      // Different sizes, so the second case computes new items besides its cache hits.
      const count = batchSize === 7 ? 40 : 30;
      const handle = await start(dag, { count }, { scatterBatchSize: batchSize, maxConcurrentBatches: 2, progressIntervalMs: 1 });
      const result = await handle.result();
      assert.deepEqual(result.outputs.doubled, Array.from({ length: count }, (_, i) => 2 * i));
      assert.equal(result.outputs.total, count * (count - 1));
      const progress = await handle.query(progressQuery);
      const counted = progress.steps.double;
      assert.equal(counted.total, count);
      assert.equal(counted.done + counted.cached, count);
      assert.equal(counted.pending + counted.running + counted.failed, 0);
    });
  }

  it('fails the run with a message naming the process and the cause', async () => {
    const dag = definePipeline({
      name: 'poisoned',
      inputs: { count: 'number' },
      processes: {
        range: { implementation: 'test.range', resource: 'cpu', inputs: { count: { from: 'inputs.count', type: 'number' } }, outputs: { numbers: 'number[]' } },
        double: {
          implementation: 'test.work',
          resource: 'cpu',
          params: { failItems: [3] },
          retry: { maximumAttempts: 2, initialInterval: 10 },
          inputs: { n: { from: 'range.numbers', type: 'number', mode: 'scatter' } },
          outputs: { doubled: 'number' },
        },
      },
      outputs: { doubled: 'double.doubled' },
    });
    const handle = await start(dag, { count: 5 });
    const error = await handle.result().then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof WorkflowFailedError);
    assert.match(String(error.cause?.message), /pipeline "poisoned" failed: .*item 3 is poisoned/);
    const progress = await handle.query(progressQuery);
    assert.equal(progress.state, 'failed');
    assert.equal(progress.steps.double.failed, 1);
    assert.equal(journal.filter((e) => e.item === 3 && e.outcome === 'failed').length >= 2, true, 'retried per its policy');
  });

  it('refuses to start without the pipeline inputs', async () => {
    const dag = definePipeline({
      name: 'needs-input',
      inputs: { count: 'number' },
      processes: { range: { implementation: 'test.range', resource: 'cpu', inputs: { count: { from: 'inputs.count', type: 'number' } }, outputs: { numbers: 'number[]' } } },
    });
    await assert.rejects((await start(dag, {})).result(), (e: WorkflowFailedError) => /started without input\(s\): count/.test(String(e.cause?.message)));
  });
});
