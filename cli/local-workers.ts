// Workers inside a virnucpro process: the host's CPU queue (workflows and cpu steps) and one
// queue per local device. `virnucpro worker` runs only these; `selftest`, `replay` (and
// `predict`) run them beside the client so a single command does everything on one machine.
import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type winston from 'winston';
import type { Settings } from './config';
import { connectWorker } from './connection';
import type { DeviceDiscovery } from './devices';
import { routeTemporalLogs } from './logging';
import { cachedWorkflowBundle } from './workflow-bundle';
import { createCpuWorker, createGpuWorker } from '../activities/steps/workers';
import { ActivityRegistry, allImplementations } from '../activities/registry';
import type { LoadArgs, LoadResult } from '../activities/gpu/protocol';
import { registerRuntimeDevice, runtimeFor, shutdownRuntimes } from '../activities/gpu/resident-runtime';
import { deviceId } from '../workflows/queues';
import { deviceJoinedSignal, deviceLeftSignal } from '../workflows/interpreter/messages';

export interface LocalWorkers {
  /** Device ids (`<host>.gpu<N>`) served here. */
  devices: string[];
  /** Identifies these workers (this process): a run seeing a new session for a device knows its old worker is gone. */
  session: string;
  /** Resolves when every worker has stopped (after shutdown, or a fatal worker error). */
  finished: Promise<void>;
  /** Tells a run these devices are available (runs started elsewhere do not know them). */
  announce(handle: WorkflowHandle): Promise<void>;
  /**
   * Announces now and again every `intervalMs` until shutdown. Re-announcing is what brings a
   * device back at once when the run marked it stalled because a previous worker for it died;
   * the run's stall cool-down then only applies to devices nobody serves.
   */
  offerTo(handle: WorkflowHandle, intervalMs?: number): Promise<void>;
  /** Tells running runs these devices leave, so their tasks move at once. */
  withdraw(client: Client): Promise<void>;
  shutdown(): Promise<void>;
}

/** The device ids workers started here with `discovery` will serve. */
export function localDeviceIds(discovery: DeviceDiscovery): string[] {
  const host = os.hostname();
  return discovery.devices.map((device) => deviceId(host, device.index));
}

/** Tell this process how to start each local device's runtime (its physical device, or the CPU). */
function registerDevices(settings: Settings, discovery: DeviceDiscovery): string[] {
  const devices = localDeviceIds(discovery);
  for (const [i, id] of devices.entries()) {
    registerRuntimeDevice(id, { kind: discovery.devices[i].kind, cudaVisible: discovery.devices[i].cudaVisible, stateDir: settings.stateDir });
  }
  return devices;
}

/** Start every local device's runtime process now, so Python and PyTorch start while the rest does. */
export function spawnRuntimes(settings: Settings, discovery: DeviceDiscovery): void {
  for (const device of registerDevices(settings, discovery)) runtimeFor(device).spawn();
}

/** Each local device's early model load: its id and the load's outcome. */
export type Preloads = Array<{ device: string; loaded: Promise<LoadResult> }>;

/**
 * Load `model` into every local device's runtime now, before its first shard arrives (the
 * shard's own load then finds it done or under way). A failure here is only logged (`logPreloads`):
 * the first shard loads again and reports the problem as the step's failure.
 */
export function preloadDevices(settings: Settings, discovery: DeviceDiscovery, model: LoadArgs): Preloads {
  return registerDevices(settings, discovery).map((device) => {
    const loaded = runtimeFor(device).preload(model);
    loaded.catch(() => undefined); // logged once a logger exists (logPreloads); never unhandled
    return { device, loaded };
  });
}

/** Logs each early load's outcome; `when` says when the loads began. */
export function logPreloads(preloads: Preloads, logger: winston.Logger, when: string): void {
  for (const { device, loaded } of preloads) {
    loaded.then(
      (result) => logger.verbose(`${device}: models loaded in ${result.seconds.toFixed(1)} s (${when})`, { phases: result.phases, numerics: result.numerics }),
      (err: Error) => logger.debug(`${device}: early model load failed: ${err.message}`),
    );
  }
}

export async function startLocalWorkers(settings: Settings, logger: winston.Logger, discovery: DeviceDiscovery): Promise<LocalWorkers> {
  routeTemporalLogs(logger);
  // Python that activities start (the import step) keeps its state where the runtimes do.
  process.env.VIRNUCPRO_STATE_DIR = settings.stateDir;
  const connection = await connectWorker(settings);
  const setup = {
    connection,
    namespace: settings.namespace,
    taskQueuePrefix: settings.taskQueuePrefix,
    registry: new ActivityRegistry(allImplementations()),
    workflowBundle: await cachedWorkflowBundle(settings.stateDir, logger),
  };
  const workers: Worker[] = [await createCpuWorker(setup)];
  const devices = registerDevices(settings, discovery);
  for (const id of devices) workers.push(await createGpuWorker(id, setup));
  const session = randomUUID();
  logger.info(`workers: cpu queue and ${devices.length} device queue(s) [${devices.join(', ')}] (${discovery.source})`);
  const finished = Promise.all(workers.map((w) => w.run())).then(() => undefined);
  let stopped = false;
  const timers: NodeJS.Timeout[] = [];
  const announce = async (handle: WorkflowHandle) => {
    for (const device of devices) await handle.signal(deviceJoinedSignal, { device, session });
  };
  return {
    devices,
    session,
    finished,
    announce,
    offerTo: async (handle, intervalMs = 10_000) => {
      // A run that already finished needs no devices; that is not an error.
      if ((await handle.describe()).status.name !== 'RUNNING') return;
      await announce(handle);
      const timer = setInterval(() => announce(handle).catch((err: Error) => logger.debug(`could not announce devices: ${err.message}`)), intervalMs);
      timer.unref();
      timers.push(timer);
    },
    withdraw: async (client) => {
      for await (const execution of client.workflow.list({ query: 'ExecutionStatus = "Running" AND WorkflowType = "runPipeline"' })) {
        const handle = client.workflow.getHandle(execution.workflowId, execution.runId);
        for (const device of devices) await handle.signal(deviceLeftSignal, { device }).catch(() => undefined);
      }
    },
    shutdown: async () => {
      if (stopped) return;
      stopped = true;
      timers.forEach(clearInterval);
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
      await finished.catch((err: Error) => logger.warn(`a worker stopped with an error: ${err.message}`));
      await shutdownRuntimes().catch((err: Error) => logger.warn(`a device runtime did not stop cleanly: ${err.message}`));
      await connection.close().catch(() => undefined);
    },
  };
}
