// Child workflow running one batch of a cpu scatter. Splitting large fan-outs into batches keeps
// every history (parent and children) far below Temporal's limits (50k events / 50 MB).
import { getExternalWorkflowHandle } from '@temporalio/workflow';
import { mapWithLimit } from './concurrency';
import type { JsonValue, ProcessSpec } from '../dsl/types';
import { batchProgressSignal } from './messages';
import { TaskContext, cpuActivities, stepTask } from './tasks';

export interface ScatterBatchInput {
  context: TaskContext;
  spec: ProcessSpec;
  batch: number;
  /** Scatter index of `items[0]`. */
  firstItem: number;
  scatterPort: string;
  items: JsonValue[];
  /** The process's other (non-scattered) inputs. */
  common: Record<string, JsonValue>;
  /** Steps scheduled at once. */
  concurrency: number;
}

export interface ScatterBatchResult {
  /** Per item, in order: the step's outputs. */
  outputs: Record<string, JsonValue>[];
  /** Items finished but not yet reported to the run by signal. */
  unreportedDone: number;
  unreportedCached: number;
}

export async function scatterBatch(input: ScatterBatchInput): Promise<ScatterBatchResult> {
  const { context, spec } = input;
  const activities = cpuActivities(context.taskQueuePrefix, spec);
  const run = getExternalWorkflowHandle(context.runWorkflowId);
  let unreportedDone = 0;
  let unreportedCached = 0;
  let lastReport = Date.now();

  const outputs = await mapWithLimit(input.items, input.concurrency, async (item, offset) => {
    const task = stepTask(context, spec, { ...input.common, [input.scatterPort]: item }, input.firstItem + offset);
    const result = await activities.runStep(task);
    if (result.cached) unreportedCached += 1;
    else unreportedDone += 1;
    if (context.progressIntervalMs > 0 && Date.now() - lastReport >= context.progressIntervalMs) {
      lastReport = Date.now();
      const report = { process: spec.name, batch: input.batch, done: unreportedDone, cached: unreportedCached };
      unreportedDone = 0;
      unreportedCached = 0;
      await run.signal(batchProgressSignal, report);
    }
    return result.outputs;
  });
  return { outputs, unreportedDone, unreportedCached };
}
