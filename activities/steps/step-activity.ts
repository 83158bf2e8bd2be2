// The generic step activity: every worker registers `runStep`, which validates the task, looks
// up the cache, runs the registered implementation in the step's own folder, checks that every
// output file is complete, and records the step marker. gpu workers bind their device id here.
//
// A group (several items of a grouped gpu scatter in one task) is run item by item, exactly as
// if each were its own task: its own cache key, folder and step marker, written as soon as that
// item is done, so a group that is cancelled or fails keeps what it finished and a later task
// with other grouping finds it in the cache. An implementation that queues its own device work
// (`queuesOnDevice`) gets all the group's items at once, so it can prepare the next while one
// computes; others get them one after the other.
//
// A device worker holds the device's next step while one runs (workers.ts createGpuWorker). A
// step that queues its own device work hands it over as soon as the one before has handed over
// its own, so the next shard reaches the device's runtime while the one before computes, in
// dispatch order; any other step waits until the one before has ended (`DeviceLine`). A step
// waiting its turn heartbeats phase `queued` (alive, but not progress: the run keeps showing what
// the device works on), so a withdrawal reaches it, and one withdrawn never starts.
import { Context } from '@temporalio/activity';
import { ActivityCancelledError, ActivityNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative } from 'node:path';
import { z } from 'zod';
import type { JsonValue } from '../../workflows/dsl/types';
import { StepActivities, StepHeartbeat, StepResult, StepTask, stepHeartbeatSignal } from '../../workflows/interpreter/messages';
import { readMarker, writeDoneMarker, writeFileAtomic } from '../files/atomic';
import type { ActivityRegistry } from '../registry';
import { cacheKey, cachedOutputs, fileRefsIn, stepDirectory, writeStepMarker } from './cache';
import { hashFile } from './files';
import type { FileRef, Implementation, StepContext } from './implementation';

const json = z.json();
const stepTaskSchema = z.strictObject({
  runWorkflowId: z.string().min(1),
  workDir: z.string().min(1),
  process: z.string().min(1),
  implementation: z.string().min(1),
  version: z.string().min(1),
  params: z.record(z.string(), json),
  cache: z.boolean(),
  inputs: z.record(z.string(), json),
  item: z.number().int().nonnegative().nullable(),
  group: z.strictObject({ port: z.string().min(1), items: z.array(z.number().int().nonnegative()).min(1) }).nullable(),
  previousAttempts: z.number().int().nonnegative(),
  progressIntervalMs: z.number().int().nonnegative(),
});

export interface StepActivityOptions {
  registry: ActivityRegistry;
  /** The device this worker serves (`<host>.gpu<N>`), null on cpu workers. */
  device: string | null;
}

type ItemResult = { outputs: Record<string, JsonValue>; cached: boolean; key: string };

export function createStepActivities(options: StepActivityOptions): StepActivities {
  const line = options.device === null ? null : new DeviceLine();
  return {
    async runStep(raw: StepTask): Promise<StepResult> {
      const task = parseOrFail(stepTaskSchema, raw, 'InvalidStepTask', 'step task') as StepTask;
      const implementation = (() => {
        try {
          return options.registry.get(task.implementation);
        } catch (error) {
          throw ApplicationFailure.nonRetryable((error as Error).message, 'UnknownImplementation');
        }
      })();
      const activity = Context.current();
      const beats = new Heartbeats(task, options.device, activity);
      // Every item takes its place in the device's line now, in the order the run dispatched them.
      const turns = line ? (task.group?.items ?? [null]).map(() => line.join(implementation.queuesOnDevice)) : null;
      try {
        if (turns?.[0].waits) await waitTurn(turns[0].ready, activity, beats);
        return await runTask(task, implementation, options.device, activity, beats, turns);
      } finally {
        for (const turn of turns ?? []) turn.leave();
      }
    },
  };
}

/** The task (or its group's items) once the step has its turn on the device; its seconds count from there. */
async function runTask(task: StepTask, implementation: Implementation, device: string | null, activity: Context, beats: Heartbeats, turns: Turn[] | null): Promise<StepResult> {
  const started = Date.now();
  const done = (result: ItemResult, items?: ItemResult[]): StepResult => ({ ...result, device, seconds: (Date.now() - started) / 1000, ...(items ? { items } : {}) });
  const turnOf = (k: number) => turns?.[k] ?? null;
  if (!task.group) return done(await beats.whileAlive(() => inTurn(turnOf(0), activity.cancellationSignal, () => runItem(task, implementation, device, activity, beats, 0, turnOf(0)))));

  const { port, items } = task.group;
  const values = task.inputs[port] as JsonValue[];
  if (!Array.isArray(values) || values.length !== items.length) {
    throw ApplicationFailure.nonRetryable(`group of ${task.process}: ${items.length} items but ${Array.isArray(values) ? values.length : 'no'} values on "${port}"`, 'InvalidStepTask');
  }
  const tasks = items.map((item, k): StepTask => ({ ...task, inputs: { ...task.inputs, [port]: values[k] }, item, group: null }));
  // One item's failure stops the others; what finished keeps its marker.
  const stop = new AbortController();
  const signal = AbortSignal.any([activity.cancellationSignal, stop.signal]);
  const run = (k: number) =>
    inTurn(turnOf(k), signal, () => runItem(tasks[k], implementation, device, activity, beats, k, turnOf(k), signal)).then(
      (result) => {
        beats.finished(k);
        return result;
      },
      (error: unknown) => {
        stop.abort(error);
        throw error;
      },
    );
  const results = await beats.whileAlive(async () => {
    if (implementation.queuesOnDevice) return Promise.all(tasks.map((_, k) => run(k)));
    const out: ItemResult[] = [];
    for (let k = 0; k < tasks.length; k++) out.push(await run(k));
    return out;
  });
  return done({ outputs: {}, cached: results.every((r) => r.cached), key: '' }, results);
}

/** One step (or group item) in its device's line. */
interface Turn {
  /** Whether it has to wait for an earlier one at all. */
  waits: boolean;
  /** Resolves when it may start. */
  ready: Promise<void>;
  /** Its work is queued on the device: the next queuing step may hand over its own. */
  queued(): void;
  /** It ended (whether it ran, hit the cache or failed); idempotent. */
  leave(): void;
}

interface LineEntry {
  queues: boolean;
  /** Set once its work is queued on the device, or it ended. */
  queued: Stage;
  ended: Stage;
}

/** A point in a step's life that later steps may wait for. */
class Stage {
  reached = false;
  private resolve!: () => void;
  readonly promise = new Promise<void>((resolve) => (this.resolve = resolve));

  reach(): void {
    this.reached = true;
    this.resolve();
  }
}

/**
 * The steps (group items) a device worker holds, in the order the run dispatched them. A step that
 * queues its device work may start once every earlier one has queued its own or ended: the
 * device's runtime then computes them in that order, preparing the next while one computes. Any
 * other step has the device to itself: it starts once every earlier one has ended.
 */
class DeviceLine {
  private readonly entries: LineEntry[] = [];

  join(queues: boolean): Turn {
    const awaited = this.entries.map((e) => (queues && e.queues ? e.queued : e.ended)).filter((stage) => !stage.reached);
    const entry: LineEntry = { queues, queued: new Stage(), ended: new Stage() };
    this.entries.push(entry);
    return {
      waits: awaited.length > 0,
      ready: Promise.all(awaited.map((stage) => stage.promise)).then(() => undefined),
      queued: () => entry.queued.reach(),
      leave: () => {
        const index = this.entries.indexOf(entry);
        if (index >= 0) this.entries.splice(index, 1);
        entry.queued.reach();
        entry.ended.reach();
      },
    };
  }
}

/** `ready`, or the abort of `signal` (as its reason), whichever comes first. */
function untilReady(ready: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    ready.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/**
 * How often a step waiting its turn heartbeats: the worker's throttle, so a withdrawal reaches it
 * within about a second, and well within the step's heartbeat timeout, which it must not trip:
 * the step is alive, only waiting (the one it waits for answers for the device).
 */
const QUEUED_BEAT_MS = 1_000;

/**
 * Waits for the step's turn on the device, heartbeating meanwhile. A withdrawal (the run cancels
 * the activity) ends the wait with the cancellation. The worker learns of one only from a
 * heartbeat's answer, so before starting, the step asks the server itself: one withdrawn just
 * before its turn came waits for the worker's cancellation instead of starting.
 */
async function waitTurn(ready: Promise<void>, activity: Context, beats: Heartbeats): Promise<void> {
  const signal = activity.cancellationSignal;
  const ticker = setInterval(() => beats.queued(), Math.min(QUEUED_BEAT_MS, (activity.info.heartbeatTimeoutMs || Infinity) / 4));
  try {
    beats.queued();
    await untilReady(ready, signal);
    const withdrawn = await activity.client.activity.heartbeat(activity.info.taskToken, QUEUED_DETAILS).then(
      () => false,
      // Any other error (the server briefly unreachable): start; a withdrawal still arrives through the worker.
      (error: unknown) => error instanceof ActivityCancelledError || error instanceof ActivityNotFoundError,
    );
    if (withdrawn) {
      // Keep heartbeating until the worker hears of it too, so the activity ends as cancelled.
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      throw signal.reason;
    }
  } finally {
    clearInterval(ticker);
  }
}

/** `work` once `turn` has come (a group's later items wait for the ones before them in the line; the step waited for the first); the turn ends with it. */
async function inTurn<T>(turn: Turn | null, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  try {
    if (turn?.waits) await untilReady(turn.ready, signal);
    return await work();
  } finally {
    turn?.leave();
  }
}

/** One task (or one item of a group): cache look-up, the implementation, checks, step marker. */
async function runItem(
  task: StepTask,
  implementation: Implementation,
  device: string | null,
  activity: Context,
  beats: Heartbeats,
  index: number,
  turn: Turn | null,
  signal: AbortSignal = activity.cancellationSignal,
): Promise<ItemResult> {
  const where = task.item === null ? task.process : `${task.process}[${task.item}]`;
  const params = parseOrFail(implementation.params, task.params, 'InvalidStepParams', `params of ${where}`);
  const inputs = parseOrFail(implementation.inputs, task.inputs, 'InvalidStepInput', `inputs of ${where}`);
  const key = cacheKey(task);
  const stepDir = stepDirectory(task.workDir, task.process, key);
  if (task.cache) {
    const hit = await cachedOutputs(stepDir, key, () => activity.heartbeat());
    if (hit) return { outputs: hit, cached: true, key };
  }
  await mkdir(stepDir, { recursive: true });
  const ctx = stepContext(task, stepDir, params, device, activity, signal, (details) => beats.send(index, details), () => turn?.queued());
  const produced = await implementation.run(inputs, ctx);
  const outputs = parseOrFail(implementation.outputs, produced, 'InvalidStepOutput', `outputs of ${where}`) as Record<string, JsonValue>;
  for (const ref of fileRefsIn(outputs)) await assertMarked(ref, where);
  if (task.cache) await writeStepMarker(stepDir, key, task.process, outputs);
  return { outputs, cached: false, key };
}

/**
 * A step heartbeats at least this often while it runs, repeating its latest details when the
 * implementation has said nothing new: the step's heartbeat timeout then measures whether its
 * worker is alive (a killed worker's task moves within that timeout), not how chatty the
 * implementation is. Stuck work is bounded by start-to-close, and on GPUs by the runtime watchdog.
 */
const KEEPALIVE_MS = 10_000;

/** What a step heartbeats while it waits for its device, before any work of its own. */
const QUEUED_DETAILS = { phase: 'queued' };

/**
 * The activity's heartbeats: the details of the item being worked on (a group's first unfinished
 * item: the one its device computes) go to Temporal and, throttled, to the run as progress.
 */
class Heartbeats {
  private current = 0;
  private readonly finishedItems = new Set<number>();
  private lastBeat = 0;
  private lastSignal = 0;
  private lastDetails: Record<string, unknown> = {};

  constructor(
    private readonly task: StepTask,
    private readonly device: string | null,
    private readonly activity: Context,
  ) {}

  send(index: number, details: Record<string, unknown>): void {
    if (index !== this.current) return;
    this.activity.heartbeat(details);
    const now = Date.now();
    this.lastBeat = now;
    this.lastDetails = details;
    // Waiting for the device is not progress: the run keeps showing what the device works on.
    if (details.phase === QUEUED_DETAILS.phase) return;
    if (this.task.progressIntervalMs > 0 && now - this.lastSignal >= this.task.progressIntervalMs) {
      this.lastSignal = now;
      const item = this.task.group ? this.task.group.items[index] : this.task.item;
      const beat: StepHeartbeat = { process: this.task.process, item, device: this.device, details: details as Record<string, JsonValue>, at: new Date(now).toISOString() };
      // Progress is best effort: a finished or unreachable run must not fail the step.
      this.activity.client.workflow.getHandle(this.task.runWorkflowId).signal(stepHeartbeatSignal, beat).catch(() => undefined);
    }
  }

  /** The step waits its turn on the device (phase `queued`: alive, not progress). */
  queued(): void {
    this.send(this.current, QUEUED_DETAILS);
  }

  finished(index: number): void {
    this.finishedItems.add(index);
    while (this.finishedItems.has(this.current)) this.current += 1;
  }

  async whileAlive<T>(work: () => Promise<T>): Promise<T> {
    const keepalive = setInterval(() => {
      if (Date.now() - this.lastBeat >= KEEPALIVE_MS) {
        this.lastBeat = Date.now();
        this.activity.heartbeat(this.lastDetails);
      }
    }, KEEPALIVE_MS / 2);
    try {
      return await work();
    } finally {
      clearInterval(keepalive);
    }
  }
}

function parseOrFail<T>(schema: z.ZodType<T>, value: unknown, type: string, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  // Malformed data will not improve on retry: fail the step at once with the reason.
  throw ApplicationFailure.nonRetryable(`${what} are invalid: ${z.prettifyError(parsed.error)}`, type);
}

/** Outputs must come through ctx.writeFile/adoptFile, so every file has its `.done` marker. */
async function assertMarked(ref: FileRef, where: string): Promise<void> {
  const marker = await readMarker(ref.path);
  const size = await stat(ref.path).then((s) => s.size).catch(() => null);
  if (!marker || marker.sha256 !== ref.sha256 || marker.bytes !== ref.bytes || size !== ref.bytes) {
    throw ApplicationFailure.nonRetryable(`${where} returned ${ref.path} without a matching .done marker (use ctx.writeFile or ctx.adoptFile)`, 'UnmarkedOutput');
  }
}

function stepContext<P>(
  task: StepTask,
  stepDir: string,
  params: P,
  device: string | null,
  activity: Context,
  signal: AbortSignal,
  heartbeat: (details: Record<string, unknown>) => void,
  queuedOnDevice: () => void,
): StepContext<P> {
  const resolveInStep = (name: string): string => {
    const path = isAbsolute(name) ? normalize(name) : join(stepDir, name);
    if (!isAbsolute(name) && relative(stepDir, path).startsWith('..')) throw new Error(`"${name}" leaves the step folder`);
    return path;
  };
  return {
    workDir: stepDir,
    params,
    process: task.process,
    attempt: task.previousAttempts + activity.info.attempt,
    device,
    signal,
    heartbeat: (details = {}) => heartbeat(details),
    queuedOnDevice,
    async writeFile(name, data, rows) {
      const path = resolveInStep(name);
      await mkdir(dirname(path), { recursive: true });
      const { bytes, sha256 } = await writeFileAtomic(path, data);
      await writeDoneMarker(path, { rows, bytes, sha256 });
      return { path, rows, bytes, sha256 };
    },
    async adoptFile(name, rows, claimed) {
      const path = resolveInStep(name);
      if (!claimed) {
        const { bytes, sha256 } = await hashFile(path);
        await writeDoneMarker(path, { rows, bytes, sha256 });
        return { path, rows, bytes, sha256 };
      }
      // The writer hashed the file as it wrote it; check that its marker, its claim and the file agree.
      const marker = await readMarker(path);
      const size = await stat(path).then((s) => s.size).catch(() => null);
      if (!marker || marker.rows !== rows || marker.sha256 !== claimed.sha256 || marker.bytes !== claimed.bytes || size !== claimed.bytes) {
        throw new Error(`${path}: its .done marker does not match what its writer reported (${claimed.bytes} bytes, sha256 ${claimed.sha256.slice(0, 12)}…, ${rows} rows)`);
      }
      return { path, rows, bytes: claimed.bytes, sha256: claimed.sha256 };
    },
  };
}
