// Real workers for tests: one cpu worker (workflows + cpu steps) and one worker per fake device,
// all served from this process against the test's Temporal server.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { createCpuWorker, createGpuWorker } from '../../activities/engine/workers';
import type { ActivityRegistry } from '../../activities/registry';
import { workflowBundle } from './temporal';

export interface TestWorkers {
  prefix: string;
  /** Stop one device's worker (its in-flight step is cancelled). */
  stopDevice(device: string): Promise<void>;
  stop(): Promise<void>;
}

export function uniquePrefix(name: string): string {
  return `test-${name}-${randomBytes(4).toString('hex')}`;
}

export async function startWorkers(
  env: TestWorkflowEnvironment,
  options: { registry: ActivityRegistry; devices: string[]; prefix?: string; cpuSlots?: number },
): Promise<TestWorkers> {
  const prefix = options.prefix ?? uniquePrefix('run');
  const setup = {
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueuePrefix: prefix,
    registry: options.registry,
    workflowBundle: await workflowBundle(),
    maxConcurrentActivities: options.cpuSlots ?? 32,
  };
  const running = new Map<Worker, Promise<void>>();
  const byDevice = new Map<string, Worker>();
  const cpu = await createCpuWorker(setup);
  running.set(cpu, cpu.run());
  for (const device of options.devices) {
    const worker = await createGpuWorker(device, setup);
    byDevice.set(device, worker);
    running.set(worker, worker.run());
  }
  const stopWorker = async (worker: Worker): Promise<void> => {
    const run = running.get(worker);
    if (!run) return;
    running.delete(worker);
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await run;
  };
  return {
    prefix,
    stopDevice: (device) => stopWorker(byDevice.get(device)!),
    stop: async () => {
      await Promise.all([...running.keys()].map(stopWorker));
    },
  };
}
