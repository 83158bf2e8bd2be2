// Keeps one runtime process per device for the life of the worker, so the models load once and
// stay resident across shards. A runtime that died (crash, OOM kill, stall) is replaced by a
// fresh one on the next request; a changed model configuration is reloaded in place.
import { LoadArgs, LoadResult, ProgressEvent, RunArgs, RunResult } from './protocol';
import { RuntimeFailure, RuntimeLaunch, RuntimeProcess } from './runtime-process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';

/** No message at all from a busy runtime for this long means it is stuck: kill and replace it. */
const DEFAULT_STALL_MS = 120_000;
/** After `cancel`, how long a run may take to stop before the runtime is killed. */
const CANCEL_GRACE_MS = 15_000;

export interface RunHooks {
  onProgress?(event: ProgressEvent): void;
  /** Called every few seconds while models load (which can take minutes), to keep a heartbeat. */
  onWaiting?(phase: 'starting' | 'loading'): void;
  signal?: AbortSignal;
}

export class ResidentRuntime {
  private process: RuntimeProcess | null = null;
  private loaded: { key: string; result: LoadResult } | null = null;
  /** Runtimes started for this device, including replacements after a death. */
  starts = 0;
  /** Runtimes started to replace one that died. */
  replacements = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly deviceId: string,
    readonly launch: RuntimeLaunch,
    private readonly stallMs = DEFAULT_STALL_MS,
  ) {}

  get pid(): number | undefined {
    return this.process?.alive ? this.process.pid : undefined;
  }

  /** The live process, starting a new one if there is none or the last one died. */
  private current(): RuntimeProcess {
    if (!this.process || !this.process.alive) {
      if (this.process) this.replacements += 1;
      this.process = new RuntimeProcess(this.launch);
      this.loaded = null;
      this.starts += 1;
    }
    return this.process;
  }

  private async ensureLoaded(load: LoadArgs, hooks: RunHooks): Promise<{ process: RuntimeProcess; load: LoadResult }> {
    const process = this.current();
    const key = JSON.stringify(load);
    if (this.loaded?.key === key) return { process, load: this.loaded.result };
    const ticker = setInterval(() => hooks.onWaiting?.('loading'), 5_000);
    try {
      hooks.onWaiting?.('loading');
      const result = await process.request('load', load);
      this.loaded = { key, result };
      return { process, load: result };
    } finally {
      clearInterval(ticker);
    }
  }

  /**
   * Embed and classify one shard. Runs are serialised per device (the runtime computes one at a
   * time anyway) so a second caller never sees a half-loaded runtime.
   */
  run(load: LoadArgs, args: RunArgs, hooks: RunHooks = {}): Promise<RunResult & { load: LoadResult; restarts: number }> {
    const next = this.queue.then(() => this.runNow(load, args, hooks));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(load: LoadArgs, args: RunArgs, hooks: RunHooks): Promise<RunResult & { load: LoadResult; restarts: number }> {
    hooks.signal?.throwIfAborted();
    const replacedBefore = this.replacements;
    let attempt: { process: RuntimeProcess; load: LoadResult };
    try {
      attempt = await this.ensureLoaded(load, hooks);
      const result = await this.watchRun(attempt.process, args, hooks);
      return { ...result, load: attempt.load, restarts: this.replacements - replacedBefore };
    } catch (error) {
      // A runtime that died mid-shard (not one that refused the input) gets one fresh retry here.
      if (!(error instanceof RuntimeFailure) || error.type !== 'exited' || hooks.signal?.aborted) throw error;
      hooks.onWaiting?.('starting');
      attempt = await this.ensureLoaded(load, hooks);
      const result = await this.watchRun(attempt.process, args, hooks);
      return { ...result, load: attempt.load, restarts: this.replacements - replacedBefore };
    }
  }

  private watchRun(process: RuntimeProcess, args: RunArgs, hooks: RunHooks): Promise<RunResult> {
    const runId = randomUUID();
    let lastHeard = Date.now();
    const onProgress = (event: ProgressEvent) => {
      lastHeard = Date.now();
      if (event.id === runId) hooks.onProgress?.(event);
    };
    const onLog = () => {
      lastHeard = Date.now();
    };
    process.on('progress', onProgress);
    process.on('log', onLog);
    let stalled = false;
    const watchdog = setInterval(() => {
      if (Date.now() - lastHeard > this.stallMs) {
        stalled = true;
        process.kill();
      }
    }, Math.min(5_000, this.stallMs));
    let cancelTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      process.request('cancel', { target: runId }).catch(() => undefined);
      cancelTimer = setTimeout(() => process.kill(), CANCEL_GRACE_MS);
    };
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
    return process.request('run', args, runId).then(
      (result) => result,
      (error: unknown) => {
        if (stalled) throw new RuntimeFailure('exited', `runtime on ${this.deviceId} sent nothing for ${this.stallMs / 1000}s while running ${args.shard}; it was killed and will be restarted`);
        throw error;
      },
    ).finally(() => {
      clearInterval(watchdog);
      clearTimeout(cancelTimer);
      hooks.signal?.removeEventListener('abort', onAbort);
      process.off('progress', onProgress);
      process.off('log', onLog);
    });
  }

  async health() {
    return this.current().request('health', {});
  }

  async shutdown(): Promise<void> {
    await this.process?.shutdown();
    this.process = null;
    this.loaded = null;
  }
}

const launches = new Map<string, RuntimeLaunch>();
const runtimes = new Map<string, ResidentRuntime>();

/** Called by the worker that serves a device queue: how to start that device's runtime. */
export function registerRuntimeDevice(deviceId: string, launch: RuntimeLaunch): void {
  launches.set(deviceId, launch);
}

/**
 * A worker that did not register its devices: `<host>.gpu<N>` is CUDA device N when the host
 * has that NVIDIA device node, else the CPU (hosts without GPUs serve one CPU "device").
 */
function guessLaunch(deviceId: string): RuntimeLaunch {
  const index = /\.gpu(\d+)$/.exec(deviceId)?.[1];
  if (index !== undefined && existsSync(`/dev/nvidia${index}`)) return { kind: 'cuda', cudaVisible: index };
  return { kind: 'cpu' };
}

/** The resident runtime of a device served by this worker process. */
export function runtimeFor(deviceId: string): ResidentRuntime {
  let runtime = runtimes.get(deviceId);
  if (!runtime) {
    runtime = new ResidentRuntime(deviceId, launches.get(deviceId) ?? guessLaunch(deviceId));
    runtimes.set(deviceId, runtime);
  }
  return runtime;
}

/** Stop every runtime this worker started (worker shutdown). */
export async function shutdownRuntimes(): Promise<void> {
  await Promise.all([...runtimes.values()].map((r) => r.shutdown()));
  runtimes.clear();
}
