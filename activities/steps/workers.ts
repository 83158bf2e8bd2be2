// Worker set-up, used by `virnucpro worker` and by the tests. Task queue names come from
// workflows/queues.ts only.
import { NativeConnection, Worker, WorkflowBundleOption } from '@temporalio/worker';
import { cpuQueue, gpuQueue } from '../../workflows/queues';
import type { ActivityRegistry } from '../registry';
import { createStepActivities } from './step-activity';

export interface WorkerSetup {
  connection: NativeConnection;
  namespace?: string;
  taskQueuePrefix: string;
  registry: ActivityRegistry;
  /** A pre-built bundle (bundleWorkflowCode) saves the bundling time when starting many workers. */
  workflowBundle?: WorkflowBundleOption;
  /** cpu steps run at once on this worker. */
  maxConcurrentActivities?: number;
}

/** Path of the compiled workflow entry point, for bundling and replay. */
export const workflowsPath = require.resolve('../../workflows');

/** Runs the interpreter workflows and every cpu process. */
export function createCpuWorker(setup: WorkerSetup): Promise<Worker> {
  return Worker.create({
    connection: setup.connection,
    namespace: setup.namespace ?? 'default',
    taskQueue: cpuQueue(setup.taskQueuePrefix),
    ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath }),
    activities: createStepActivities({ registry: setup.registry, device: null }),
    maxConcurrentActivityTaskExecutions: setup.maxConcurrentActivities ?? 8,
  });
}

/**
 * Serves one device's queue. One step at a time: the device's runtime works on one shard; the
 * next one waits on the queue, already assigned, so the hand-over costs no workflow round-trip
 * (and a task moved to another device meanwhile never starts here). Heartbeats reach the server
 * every second at most, so `virnucpro status` shows live progress.
 */
export function createGpuWorker(device: string, setup: WorkerSetup): Promise<Worker> {
  return Worker.create({
    connection: setup.connection,
    namespace: setup.namespace ?? 'default',
    taskQueue: gpuQueue(setup.taskQueuePrefix, device),
    activities: createStepActivities({ registry: setup.registry, device }),
    maxConcurrentActivityTaskExecutions: 1,
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
  });
}
