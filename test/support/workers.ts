// Real workers for tests: one cpu worker (workflows + cpu steps) and one worker per fake device,
// all served from this process against the test's Temporal server.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { randomBytes } from 'node:crypto';
import { createCpuWorker, createGpuWorker } from '../../activities/steps/workers';
import type { ActivityRegistry } from '../../activities/registry';
import { workflowBundle } from './temporal';

export interface TestWorkers {
  /** Task queue prefix of these workers (unique per call, so test files never share queues). */
  prefix: string;
  stop(): Promise<void>;
}

export async function startWorkers(
  env: TestWorkflowEnvironment,
  options: { registry: ActivityRegistry; devices: string[]; cpuSlots?: number },
): Promise<TestWorkers> {
  const prefix = `test-${randomBytes(4).toString('hex')}`;
  const setup = {
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueuePrefix: prefix,
    registry: options.registry,
    workflowBundle: await workflowBundle(),
    maxConcurrentActivities: options.cpuSlots ?? 32,
  };
  const workers = [await createCpuWorker(setup)];
  for (const device of options.devices) workers.push(await createGpuWorker(device, setup));
  const runs = workers.map((worker) => worker.run());
  return {
    prefix,
    stop: async () => {
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
      await Promise.all(runs);
    },
  };
}
