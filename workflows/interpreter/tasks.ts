// Building step tasks and the activity proxies that run them on cpu workers (workflow code).
import { proxyActivities } from '@temporalio/workflow';
import type { JsonValue, ProcessSpec } from '../dsl/types';
import { cpuQueue } from '../queues';
import type { StepActivities, StepTask } from './messages';

export interface TaskContext {
  runWorkflowId: string;
  workDir: string;
  taskQueuePrefix: string;
  progressIntervalMs: number;
}

export function stepTask(context: TaskContext, spec: ProcessSpec, inputs: Record<string, JsonValue>, item: number | null): StepTask {
  return {
    runWorkflowId: context.runWorkflowId,
    workDir: context.workDir,
    process: spec.name,
    implementation: spec.implementation,
    version: spec.version,
    params: spec.params,
    cache: spec.cache,
    inputs,
    item,
    group: null,
    previousAttempts: 0,
    progressIntervalMs: context.progressIntervalMs,
  };
}

/** cpu steps retry through Temporal's own retry policy (any cpu worker may take the retry). */
export function cpuActivities(taskQueuePrefix: string, spec: ProcessSpec): StepActivities {
  return proxyActivities<StepActivities>({
    taskQueue: cpuQueue(taskQueuePrefix),
    startToCloseTimeout: spec.timeouts.startToCloseMs,
    heartbeatTimeout: spec.timeouts.heartbeatMs ?? undefined,
    retry: {
      maximumAttempts: spec.retry.maximumAttempts,
      initialInterval: spec.retry.initialIntervalMs,
      backoffCoefficient: spec.retry.backoffCoefficient,
      maximumInterval: spec.retry.maximumIntervalMs,
    },
  });
}
