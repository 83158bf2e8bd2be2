// gpu scheduling on real per-device task queues: a fast and a three times slower device share a
// scatter with the fast one kept busy; a device that stops heartbeating loses its task to the
// other device; a task that keeps failing fails the run after its bounded attempts.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActivityRegistry } from '../../activities/registry';
import { definePipeline } from '../../workflows/dsl/define';
import type { JsonValue } from '../../workflows/dsl/types';
import { runPipeline } from '../../workflows/interpreter/run-pipeline';
import { deviceJoinedSignal, deviceLeftSignal, InterpreterOptions, progressQuery } from '../../workflows/interpreter/messages';
import { cpuQueue } from '../../workflows/queues';
import { startTemporal } from '../support/temporal';
import { startWorkers, TestWorkers } from '../support/workers';
import { JournalEntry, journal, testImplementations } from '../support/test-implementations';

const FAST = 'fast.gpu0';
const SLOW = 'slow.gpu0';

function gpuScatter(name: string, params: Record<string, JsonValue>, maximumAttempts = 3) {
  return definePipeline({
    name,
    inputs: { numbers: 'number[]' },
    processes: {
      work: {
        implementation: 'test.work',
        resource: 'gpu',
        cache: false,
        params,
        retry: { maximumAttempts },
        timeouts: { startToClose: '1m', heartbeat: '1s' },
        inputs: { n: { from: 'inputs.numbers', type: 'number', mode: 'scatter' } },
        outputs: { doubled: 'number' },
      },
    },
    outputs: { doubled: 'work.doubled' },
  });
}

describe('interpreter: gpu scheduling', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let workers: TestWorkers;
  let workDir: string;

  before(async () => {
    env = await startTemporal();
    workers = await startWorkers(env, { registry: new ActivityRegistry(testImplementations), devices: [FAST, SLOW] });
  });
  beforeEach(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'virnucpro-gpu-'));
  });
  afterEach(async () => {
    await rm(workDir, { recursive: true, force: true });
  });
  after(async () => {
    await workers?.stop();
    await env?.teardown();
  });

  let runs = 0;
  function start(dag: ReturnType<typeof gpuScatter>, numbers: number[], options: Partial<InterpreterOptions> = {}, devices = [FAST, SLOW]) {
    return env.client.workflow.start(runPipeline, {
      taskQueue: cpuQueue(workers.prefix),
      workflowId: `gpu-${Date.now()}-${runs++}`,
      args: [{ dag, inputs: { numbers }, workDir, taskQueuePrefix: workers.prefix, devices, options }],
    });
  }

  it('keeps the fast device busy while a 3x slower one takes fewer tasks; no task completes twice', async () => {
    const base = 10_000;
    // Tasks of 1 s: each hand-over costs the worker a poll (20-100 ms on this busy machine),
    // negligible for real shards of tens of seconds.
    const numbers = Array.from({ length: 16 }, (_, i) => base + i);
    const handle = await start(gpuScatter('balance', { ms: 1000, slowdown: { [SLOW]: 3 } }), numbers);
    const result = await handle.result();
    assert.deepEqual(result.outputs.doubled, numbers.map((n) => 2 * n));

    const entries = journal.filter((e) => e.item !== null && e.item >= base && e.item < base + numbers.length);
    const completed = entries.filter((e) => e.outcome === 'completed');
    const perItem = new Map<number, number>();
    for (const e of completed) perItem.set(e.item!, (perItem.get(e.item!) ?? 0) + 1);
    assert.equal(perItem.size, numbers.length);
    assert.ok([...perItem.values()].every((n) => n === 1), 'every task completed exactly once');

    // A task moved off the slow device may still be winding down (end 0): it ends the run for no one.
    const span = Math.max(...completed.map((e) => e.end)) - Math.min(...entries.map((e) => e.start));
    const fastBusy = busyTime(entries.filter((e) => e.device === FAST));
    const idle = (span - fastBusy) / span;
    const fastDone = completed.filter((e) => e.device === FAST).length;
    const slowDone = completed.filter((e) => e.device === SLOW).length;
    console.log(`      fast device: ${fastDone} tasks, idle ${(100 * idle).toFixed(1)}% of ${span} ms; slow device: ${slowDone} tasks`);
    assert.ok(idle < 0.1, `fast device idle ${(100 * idle).toFixed(1)}% of the run`);
    assert.ok(fastDone > 2 * slowDone, `the fast device takes most tasks (${fastDone} vs ${slowDone})`);

    const progress = await handle.query(progressQuery);
    assert.equal(progress.devices[FAST].done + progress.devices[SLOW].done, numbers.length);
    assert.ok(progress.devices[FAST].unitsPerSecond! > 2 * progress.devices[SLOW].unitsPerSecond!, 'the devices\' measured speeds');
  });

  it('uses a device that joins by signal, and stops using one that leaves', async () => {
    const base = 40_000;
    const numbers = Array.from({ length: 12 }, (_, i) => base + i);
    const handle = await start(gpuScatter('join-leave', { ms: 250 }), numbers, {}, [SLOW]);
    const entriesOf = () => journal.filter((e) => e.item !== null && e.item >= base && e.item < base + numbers.length);
    await waitUntil(() => entriesOf().some((e) => e.device === SLOW));
    const early = await handle.query(progressQuery);
    assert.equal(early.state, 'running');
    assert.equal(early.steps.work.total, numbers.length);
    assert.ok(early.steps.work.running >= 1 && early.steps.work.running <= 2, 'one device holds one or two tasks');
    assert.equal(early.steps.work.pending, numbers.length - early.steps.work.running - early.steps.work.done);
    assert.deepEqual(Object.keys(early.devices), [SLOW]);
    await handle.signal(deviceJoinedSignal, { device: FAST });
    await waitUntil(() => entriesOf().some((e) => e.device === FAST));
    await handle.signal(deviceLeftSignal, { device: SLOW });
    const leftAt = Date.now();
    const result = await handle.result();
    assert.deepEqual(result.outputs.doubled, numbers.map((n) => 2 * n));
    const lateOnSlow = entriesOf().filter((e) => e.device === SLOW && e.start > leftAt + 100);
    assert.deepEqual(lateOnSlow, [], 'no task started on the device after it left');
    const progress = await handle.query(progressQuery);
    assert.equal(progress.devices[SLOW].state, 'left');
    assert.equal(progress.devices[FAST].done + progress.devices[SLOW].done, numbers.length);
  });

  it('hands out a replaced worker\'s tasks again at once, without waiting for their heartbeat timeout', async () => {
    const base = 50_000;
    const numbers = [base, base + 1];
    // Long heartbeat timeout (60 s): only the new session can explain a restart within 15 s.
    const dag = gpuScatter('replaced', { ms: 6000 });
    dag.processes[0].timeouts.heartbeatMs = 60_000;
    const handle = await start(dag, numbers, {}, []);
    await handle.signal(deviceJoinedSignal, { device: FAST, session: 'worker-1' });
    const entriesOf = () => journal.filter((e) => e.item !== null && e.item >= base && e.item < base + numbers.length);
    await waitUntil(() => entriesOf().some((e) => e.device === FAST));
    const replacedAt = Date.now();
    await handle.signal(deviceJoinedSignal, { device: FAST, session: 'worker-1' }); // a re-announcement changes nothing
    await handle.signal(deviceJoinedSignal, { device: FAST, session: 'worker-2' });
    const result = await handle.result();
    assert.deepEqual(result.outputs.doubled, numbers.map((n) => 2 * n));
    // Whichever task the old worker was running when the new one joined starts again promptly.
    const running = entriesOf().find((e) => e.start <= replacedAt)!;
    const again = entriesOf().filter((e) => e.item === running.item && e.start > replacedAt);
    assert.equal(again.length, 1, `the running task started again on the new worker: ${JSON.stringify(entriesOf())}`);
    assert.ok(again[0].start - replacedAt < 15_000, `restarted ${again[0].start - replacedAt} ms after the new worker joined`);
    assert.deepEqual(entriesOf().filter((e) => e.outcome === 'completed').map((e) => e.item).sort(), numbers, 'each task completed once');
    const progress = await handle.query(progressQuery);
    assert.equal(progress.devices[FAST].restarts, 1);
    assert.equal(progress.steps.work.done, 2);
  });

  it('moves the task of a device that stops heartbeating to the other device', async () => {
    const base = 20_000;
    // Enough work that the fast device is still busy when the hung task's heartbeat times out.
    const numbers = Array.from({ length: 20 }, (_, i) => base + i);
    const handle = await start(gpuScatter('stall', { ms: 100, stallDevice: SLOW, stallMs: 4000 }), numbers, { stalledCooldownMs: 60_000 });
    const result = await handle.result();
    assert.deepEqual(result.outputs.doubled, numbers.map((n) => 2 * n));

    const entries = journal.filter((e) => e.item !== null && e.item >= base && e.item < base + numbers.length);
    const stalledEntry = entries.find((e) => e.outcome === 'stalled');
    assert.ok(stalledEntry, 'the slow device hung on its first task');
    assert.equal(stalledEntry.device, SLOW);
    const rescued = entries.filter((e) => e.item === stalledEntry.item && e.outcome === 'completed');
    assert.equal(rescued.length, 1, 'the hung task completed once, elsewhere');
    assert.equal(rescued[0].device, FAST);
    assert.ok(rescued[0].attempt >= 2, 'the rescue counts as a later attempt');
    const progress = await handle.query(progressQuery);
    assert.equal(progress.devices[SLOW].state, 'stalled');
    assert.equal(progress.steps.work.done, numbers.length);
  });

  it('fails the run with a clear message after the bounded attempts', async () => {
    const base = 30_000;
    const handle = await start(gpuScatter('doomed', { ms: 10, failItems: [base + 1] }, 3), [base, base + 1, base + 2]);
    const error = await handle.result().then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e as WorkflowFailedError,
    );
    assert.match(String(error.cause?.message), /gpu task work\[1\] failed 3 time\(s\) \(devices tried: .+\); last error: item 30001 is poisoned/);
    const attempts = journal.filter((e) => e.item === base + 1);
    assert.equal(attempts.length, 3, 'exactly the bounded number of attempts');
    assert.notEqual(attempts[0].device, attempts[1].device, 'the retry went to the device it had not failed on');
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Total time covered by the entries' [start, end] intervals (they may touch but not overlap). */
function busyTime(entries: JournalEntry[]): number {
  return entries.reduce((total, e) => total + (e.end - e.start), 0);
}
