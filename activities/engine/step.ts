// The generic step activity: every worker registers `runStep`, which validates the task, looks
// up the cache, runs the registered implementation in the step's own folder, checks that every
// output file is complete, and records the step marker. gpu workers bind their device id here.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative } from 'node:path';
import { z } from 'zod';
import type { JsonValue } from '../../workflows/dsl/types';
import { StepActivities, StepHeartbeat, StepResult, StepTask, stepHeartbeatSignal } from '../../workflows/engine/messages';
import { readMarker, writeDoneMarker, writeFileAtomic } from '../files/atomic';
import type { ActivityRegistry } from '../registry';
import { cacheKey, cachedOutputs, fileRefsIn, stepDirectory, writeStepMarker } from './cache';
import { hashFile } from './files';
import type { FileRef, StepContext } from './implementation';

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
  previousAttempts: z.number().int().nonnegative(),
  progressIntervalMs: z.number().int().nonnegative(),
});

export interface StepActivityOptions {
  registry: ActivityRegistry;
  /** The device this worker serves (`<host>.gpu<N>`), null on cpu workers. */
  device: string | null;
}

export function createStepActivities(options: StepActivityOptions): StepActivities {
  return {
    async runStep(raw: StepTask): Promise<StepResult> {
      const started = Date.now();
      const task = parseOrFail(stepTaskSchema, raw, 'InvalidStepTask', 'step task') as StepTask;
      const implementation = (() => {
        try {
          return options.registry.get(task.implementation);
        } catch (error) {
          throw ApplicationFailure.nonRetryable((error as Error).message, 'UnknownImplementation');
        }
      })();
      const where = task.item === null ? task.process : `${task.process}[${task.item}]`;
      const params = parseOrFail(implementation.params, task.params, 'InvalidStepParams', `params of ${where}`);
      const inputs = parseOrFail(implementation.inputs, task.inputs, 'InvalidStepInput', `inputs of ${where}`);

      const key = cacheKey(task);
      const stepDir = stepDirectory(task.workDir, task.process, key);
      const activity = Context.current();
      const result = (outputs: Record<string, JsonValue>, cached: boolean): StepResult => ({
        outputs,
        cached,
        key,
        device: options.device,
        seconds: (Date.now() - started) / 1000,
      });

      if (task.cache) {
        const hit = await cachedOutputs(stepDir, key, () => activity.heartbeat());
        if (hit) return result(hit, true);
      }
      await mkdir(stepDir, { recursive: true });
      const ctx = stepContext(task, stepDir, params, options.device, activity);
      const produced = await ctx.whileAlive(() => implementation.run(inputs, ctx));
      const outputs = parseOrFail(implementation.outputs, produced, 'InvalidStepOutput', `outputs of ${where}`) as Record<string, JsonValue>;
      for (const ref of fileRefsIn(outputs)) await assertMarked(ref, where);
      if (task.cache) await writeStepMarker(stepDir, key, task.process, outputs);
      return result(outputs, false);
    },
  };
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

/**
 * A step heartbeats at least this often while it runs, repeating its latest details when the
 * implementation has said nothing new: the step's heartbeat timeout then measures whether its
 * worker is alive (a killed worker's task moves within that timeout), not how chatty the
 * implementation is. Stuck work is bounded by start-to-close, and on GPUs by the runtime watchdog.
 */
const KEEPALIVE_MS = 10_000;

function stepContext<P>(task: StepTask, stepDir: string, params: P, device: string | null, activity: Context): StepContext<P> & { whileAlive<T>(work: () => Promise<T>): Promise<T> } {
  let lastSignal = 0;
  let lastBeat = 0;
  let lastDetails: Record<string, unknown> = {};
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
    signal: activity.cancellationSignal,
    async whileAlive(work) {
      const keepalive = setInterval(() => {
        if (Date.now() - lastBeat >= KEEPALIVE_MS) {
          lastBeat = Date.now();
          activity.heartbeat(lastDetails);
        }
      }, KEEPALIVE_MS / 2);
      try {
        return await work();
      } finally {
        clearInterval(keepalive);
      }
    },
    heartbeat(details = {}) {
      activity.heartbeat(details);
      const now = Date.now();
      lastBeat = now;
      lastDetails = details;
      if (task.progressIntervalMs > 0 && now - lastSignal >= task.progressIntervalMs) {
        lastSignal = now;
        const beat: StepHeartbeat = { process: task.process, item: task.item, device, details: details as Record<string, JsonValue>, at: new Date(now).toISOString() };
        // Progress is best effort: a finished or unreachable run must not fail the step.
        activity.client.workflow.getHandle(task.runWorkflowId).signal(stepHeartbeatSignal, beat).catch(() => undefined);
      }
    },
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
