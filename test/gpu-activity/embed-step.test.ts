// The gpu step (gpu.embed-classify) as the interpreter runs it: Temporal, a device worker, the real
// runtime on CPU with tiny synthetic weights. Progress reaches the run as heartbeats, and a
// runtime killed mid-shard is restarted without failing the run. The device worker hands the next
// shard to the runtime while one computes, and a shard withdrawn while queued there is cancelled
// in the runtime and never counts.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { EMBED_SHARD, shardResult } from '../../activities/gpu/embed-shard';
import { registerRuntimeDevice, ResidentRuntime, runtimeFor, shutdownRuntimes } from '../../activities/gpu/resident-runtime';
import { RuntimeFailure } from '../../activities/gpu/runtime-process';
import { ActivityRegistry, allImplementations } from '../../activities/registry';
import { definePipeline } from '../../workflows/dsl/define';
import { runPipeline } from '../../workflows/interpreter/run-pipeline';
import { deviceJoinedSignal, deviceLeftSignal, progressQuery } from '../../workflows/interpreter/messages';
import { cpuQueue } from '../../workflows/queues';
import { startTemporal } from '../support/temporal';
import { startWorkers, type TestWorkers } from '../support/workers';
import { writeFrameShard } from './frames-fixture';

const device = 'testhost.gpu0';

const embedOnly = definePipeline({
  name: 'embed-only',
  inputs: { shards: 'frames[]' },
  processes: {
    embed: {
      implementation: EMBED_SHARD,
      resource: 'gpu',
      inputs: { shard: { from: 'inputs.shards', type: 'frames', mode: 'scatter' } },
      outputs: { result: 'shard.result' },
      params: { model: { synthetic: 'tiny', precision: 'fp32' }, weightFiles: [], embeddings: false },
      timeouts: { startToClose: '10m', heartbeat: '2m' },
    },
  },
  outputs: { results: 'embed.result' },
});

const embedGrouped = definePipeline({
  name: 'embed-grouped',
  inputs: { shards: 'frames[]' },
  processes: {
    embed: {
      implementation: EMBED_SHARD,
      resource: 'gpu',
      group: true,
      inputs: { shard: { from: 'inputs.shards', type: 'frames', mode: 'scatter' } },
      outputs: { result: 'shard.result' },
      params: { model: { synthetic: 'tiny', precision: 'fp32' }, weightFiles: [], embeddings: false },
      timeouts: { startToClose: '10m', heartbeat: '60s' },
    },
  },
  outputs: { results: 'embed.result' },
});

describe('gpu activity: the embed step under Temporal (CPU runtime)', function () {
  this.timeout(240_000);
  let env: TestWorkflowEnvironment;
  let workers: TestWorkers;
  let dir: string;

  before(async () => {
    env = await startTemporal();
    registerRuntimeDevice(device, { kind: 'cpu', progressIntervalS: 0.2 });
    workers = await startWorkers(env, { registry: new ActivityRegistry(allImplementations()), devices: [device] });
    dir = mkdtempSync(path.join(tmpdir(), 'virnucpro-embed-step-'));
  });
  after(async () => {
    await workers?.stop();
    await shutdownRuntimes();
    await env?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('scores every shard, heartbeats progress, and survives a runtime killed mid-shard', async () => {
    const shards = [await writeFrameShard(path.join(dir, 'frames-00000.arrow'), 20, 5), await writeFrameShard(path.join(dir, 'frames-00001.arrow'), 200, 6)];
    const handle = await env.client.workflow.start(runPipeline, {
      taskQueue: cpuQueue(workers.prefix),
      workflowId: `embed-step-${Date.now()}`,
      args: [{ dag: embedOnly, inputs: { shards }, workDir: path.join(dir, 'work'), taskQueuePrefix: workers.prefix, devices: [device], options: { progressIntervalMs: 100 } }],
    });

    // Kill the runtime while the second shard is under way (frames_total 200, under half done).
    let killedPid: number | undefined;
    for (let i = 0; i < 600 && killedPid === undefined; i++) {
      // the query handler exists once the workflow's first task ran
      const progress = await handle.query(progressQuery).catch(() => null);
      const details = progress?.steps.embed?.latestHeartbeat?.details as { frames_total?: number; frames_done?: number } | undefined;
      if (details?.frames_total === 200 && (details.frames_done ?? 0) > 0 && (details.frames_done ?? 0) < 100) {
        killedPid = runtimeFor(device).pid;
        if (killedPid) process.kill(killedPid, 'SIGKILL');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(killedPid, 'a heartbeat with frame progress of the second shard arrived');

    const result = await handle.result();
    const results = (result.outputs.results as unknown[]).map((r) => shardResult.parse(r));
    assert.deepEqual(results.map((r) => r.frames), [20, 200]);
    assert.deepEqual(results.map((r) => r.device), [device, device]);
    assert.equal(results[1].restarts, 1, 'the killed runtime was replaced and the shard rerun');
    assert.notEqual(runtimeFor(device).pid, killedPid);
    assert.equal(result.progress.steps.embed.failed, 0);
    assert.equal(result.progress.steps.embed.unitsDone, 220, 'progress counts the frames of every shard');
    assert.equal(result.progress.devices[device].unitsDone, 220);

    // The interrupted shard's result is byte-identical to an uninterrupted run's.
    const clean = await env.client.workflow.execute(runPipeline, {
      taskQueue: cpuQueue(workers.prefix),
      workflowId: `embed-step-clean-${Date.now()}`,
      args: [{ dag: embedOnly, inputs: { shards: [shards[1]] }, workDir: path.join(dir, 'clean'), taskQueuePrefix: workers.prefix, devices: [device] }],
    });
    const uninterrupted = shardResult.parse((clean.outputs.results as unknown[])[0]);
    assert.equal(uninterrupted.restarts, 0);
    assert.equal(results[1].file.sha256, uninterrupted.file.sha256);
    assert.equal(results[1].numerics, uninterrupted.numerics);
  });

  it('runs a grouped scatter item by item: each shard cached on its own, whatever the grouping', async () => {
    const shards = await Promise.all(Array.from({ length: 6 }, (_, i) => writeFrameShard(path.join(dir, `g-frames-0000${i}.arrow`), 20 + 10 * i, 20 + i)));
    const run = (label: string) =>
      env.client.workflow.execute(runPipeline, {
        taskQueue: cpuQueue(workers.prefix),
        workflowId: `embed-grouped-${label}-${Date.now()}`,
        args: [{ dag: embedGrouped, inputs: { shards }, workDir: path.join(dir, 'grouped'), taskQueuePrefix: workers.prefix, devices: [device] }],
      });
    const first = await run('first');
    const results = (first.outputs.results as unknown[]).map((r) => shardResult.parse(r));
    assert.deepEqual(results.map((r) => r.frames), shards.map((s) => s.rows), 'one result per shard, in shard order');
    assert.equal(first.progress.steps.embed.done, 6);
    assert.equal(first.progress.steps.embed.unitsDone, shards.reduce((sum, s) => sum + s.rows, 0));
    // Run again on the same work folder: every shard is a cache hit, however the pool groups them now.
    const again = await run('again');
    assert.equal(again.progress.steps.embed.cached, 6);
    assert.deepEqual((again.outputs.results as unknown[]).map((r) => shardResult.parse(r).file.sha256), results.map((r) => r.file.sha256));
  });
  it('hands each next shard to the runtime while the one before computes', async () => {
    const shards = await Promise.all(Array.from({ length: 3 }, (_, i) => writeFrameShard(path.join(dir, `h-frames-0000${i}.arrow`), 600, 40 + i)));
    const runtime = runtimeFor(device);
    const spy = spyRuns(runtime);
    const sentBefore = runtime.sentAhead;
    try {
      const result = await env.client.workflow.execute(runPipeline, {
        taskQueue: cpuQueue(workers.prefix),
        workflowId: `embed-handover-${Date.now()}`,
        args: [{ dag: embedOnly, inputs: { shards }, workDir: path.join(dir, 'handover'), taskQueuePrefix: workers.prefix, devices: [device] }],
      });
      assert.deepEqual((result.outputs.results as unknown[]).map((r) => shardResult.parse(r).frames), [600, 600, 600]);
    } finally {
      spy.restore();
    }
    assert.equal(spy.calls.length, 3);
    for (let k = 1; k < spy.calls.length; k++) {
      assert.ok(spy.calls[k].calledAt < spy.calls[k - 1].settledAt!, `shard ${k} reached the runtime before shard ${k - 1} finished: ${JSON.stringify(spy.calls)}`);
    }
    assert.equal(runtime.sentAhead - sentBefore, 2, 'every shard after the first was queued in the runtime behind the one computing');
  });

  it('cancels a withdrawn shard in the runtime: it never counts, and the run scores it once, later', async () => {
    const shards = [await writeFrameShard(path.join(dir, 'w-frames-00000.arrow'), 1500, 50), await writeFrameShard(path.join(dir, 'w-frames-00001.arrow'), 1500, 51)];
    const runtime = runtimeFor(device);
    const spy = spyRuns(runtime);
    try {
      const handle = await env.client.workflow.start(runPipeline, {
        taskQueue: cpuQueue(workers.prefix),
        workflowId: `embed-withdrawn-${Date.now()}`,
        args: [{ dag: embedOnly, inputs: { shards }, workDir: path.join(dir, 'withdrawn'), taskQueuePrefix: workers.prefix, devices: [device] }],
      });
      // One shard computes and the other waits in the runtime's queue (the task queue decides which is first)...
      await waitUntil(() => spy.calls.length === 2 && spy.calls[0].progressed);
      const queued = spy.calls[1];
      assert.equal(queued.settledAt, undefined, `the second shard is queued, not done: ${JSON.stringify(spy.calls)}`);
      // ...when the device leaves the run: both its tasks are withdrawn.
      await handle.signal(deviceLeftSignal, { device });
      await waitUntil(() => spy.calls.every((c) => c.settledAt !== undefined));
      // Each step learns of its withdrawal from a heartbeat's answer: usually the queued shard is
      // dropped unstarted, but if the computing one stops first the runtime may begin it before its
      // own cancel arrives. Either way the runtime cancels it and it writes nothing.
      assert.match(queued.outcome!, /^cancelled: /, 'the runtime cancelled the queued shard');
      // The device comes back and the run finishes: each shard scored once, by the new dispatches.
      await handle.signal(deviceJoinedSignal, { device });
      const result = await handle.result();
      const results = (result.outputs.results as unknown[]).map((r) => shardResult.parse(r));
      assert.deepEqual(results.map((r) => r.frames), [1500, 1500]);
      assert.equal(result.progress.steps.embed.done, 2);
      assert.equal(result.progress.devices[device].unitsDone, 3000, 'the withdrawn attempts count no frames');
      for (const shard of shards) {
        assert.deepEqual(spy.calls.filter((c) => c.shard === shard.path).map((c) => c.outcome!.split(':')[0]), ['cancelled', 'ok'], `${shard.path}: withdrawn once, then scored once`);
      }
    } finally {
      spy.restore();
    }
  });
});

interface RunCall {
  shard: string;
  calledAt: number;
  settledAt?: number;
  /** The runtime reported progress of this run (it started computing it). */
  progressed: boolean;
  /** `ok`, or the runtime failure's `type: message`. */
  outcome?: string;
}

/** Records every shard the device's runtime is asked to run, and how each run ended. */
function spyRuns(runtime: ResidentRuntime): { calls: RunCall[]; restore(): void } {
  const calls: RunCall[] = [];
  const run = runtime.run;
  runtime.run = async (load, args, hooks = {}) => {
    const call: RunCall = { shard: args.shard, calledAt: Date.now(), progressed: false };
    calls.push(call);
    try {
      const result = await run.call(runtime, load, args, {
        ...hooks,
        onProgress: (event) => {
          call.progressed = true;
          hooks.onProgress?.(event);
        },
      });
      call.outcome = 'ok';
      return result;
    } catch (error) {
      call.outcome = error instanceof RuntimeFailure ? `${error.type}: ${error.message}` : `error: ${String(error)}`;
      throw error;
    } finally {
      call.settledAt = Date.now();
    }
  };
  return { calls, restore: () => void (runtime.run = run) };
}

async function waitUntil(condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
