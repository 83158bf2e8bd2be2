// Worker set-up, used by `virnucpro worker` and by the tests. Task queue names come from
// workflows/queues.ts only.
import { NativeConnection, Worker, WorkflowBundleOption } from '@temporalio/worker';
import { defaultInterpreterOptions } from '../../workflows/interpreter/messages';
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
 * Serves one device's queue. The worker takes as many of the device's dispatches as the run
 * keeps on it (its slots: one running, the next already assigned), so the next step starts in
 * this process while the one before still runs: a step that queues its own device work (the
 * embed step) hands its shard to the device's runtime at once, which reads and tokenises it
 * while the GPU computes the one before. Every other step waits in the worker for the device
 * (step-activity.ts `DeviceLine`), and one withdrawn while it waited never starts here.
 * Heartbeats reach the server every second at most, so `virnucpro status` shows live progress
 * and a withdrawn step learns it within about a second.
 */
export function createGpuWorker(device: string, setup: WorkerSetup): Promise<Worker> {
  return Worker.create({
    connection: setup.connection,
    namespace: setup.namespace ?? 'default',
    taskQueue: gpuQueue(setup.taskQueuePrefix, device),
    activities: createStepActivities({ registry: setup.registry, device }),
    maxConcurrentActivityTaskExecutions: defaultInterpreterOptions.gpuSlotsPerDevice,
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
  });
}
