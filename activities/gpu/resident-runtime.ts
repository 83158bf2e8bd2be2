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
/** Loading the full models from a slow disk onto a CPU takes minutes; a load this long is hung. */
const LOAD_TIMEOUT_MS = 30 * 60_000;

export interface RunHooks {
  onProgress?(event: ProgressEvent): void;
  /** Called every few seconds while models load (which can take minutes), to keep a heartbeat. */
  onWaiting?(phase: 'starting' | 'loading'): void;
  signal?: AbortSignal;
}

export class ResidentRuntime {
  private runtime: RuntimeProcess | null = null;
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
    return this.runtime?.alive ? this.runtime.pid : undefined;
  }

  /** The live runtime, starting a new one if there is none or the last one died. */
  private current(): RuntimeProcess {
    if (!this.runtime || !this.runtime.alive) {
      if (this.runtime) this.replacements += 1;
      this.runtime = new RuntimeProcess(this.launch);
      this.loaded = null;
      this.starts += 1;
    }
    return this.runtime;
  }

  private async ensureLoaded(load: LoadArgs, hooks: RunHooks): Promise<{ runtime: RuntimeProcess; load: LoadResult }> {
    const runtime = this.current();
    const key = JSON.stringify(load);
    if (this.loaded?.key === key) return { runtime, load: this.loaded.result };
    const ticker = setInterval(() => hooks.onWaiting?.('loading'), 5_000);
    const hung = setTimeout(() => runtime.kill(), LOAD_TIMEOUT_MS);
    try {
      hooks.onWaiting?.('loading');
      const result = await runtime.request('load', load);
      this.loaded = { key, result };
      return { runtime, load: result };
    } finally {
      clearInterval(ticker);
      clearTimeout(hung);
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
    let attempt: { runtime: RuntimeProcess; load: LoadResult };
    try {
      attempt = await this.ensureLoaded(load, hooks);
      const result = await this.watchRun(attempt.runtime, args, hooks);
      return { ...result, load: attempt.load, restarts: this.replacements - replacedBefore };
    } catch (error) {
      // A runtime that died mid-shard (not one that refused the input) gets one fresh retry here.
      if (!(error instanceof RuntimeFailure) || error.type !== 'exited' || hooks.signal?.aborted) throw error;
      hooks.onWaiting?.('starting');
      attempt = await this.ensureLoaded(load, hooks);
      const result = await this.watchRun(attempt.runtime, args, hooks);
      return { ...result, load: attempt.load, restarts: this.replacements - replacedBefore };
    }
  }

  private watchRun(runtime: RuntimeProcess, args: RunArgs, hooks: RunHooks): Promise<RunResult> {
    const runId = randomUUID();
    let lastHeard = Date.now();
    const onProgress = (event: ProgressEvent) => {
      lastHeard = Date.now();
      if (event.id === runId) hooks.onProgress?.(event);
    };
    const onLog = () => {
      lastHeard = Date.now();
    };
    runtime.on('progress', onProgress);
    runtime.on('log', onLog);
    let stalled = false;
    const watchdog = setInterval(() => {
      if (Date.now() - lastHeard > this.stallMs) {
        stalled = true;
        runtime.kill();
      }
    }, Math.min(5_000, this.stallMs));
    let cancelTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      runtime.request('cancel', { target: runId }).catch(() => undefined);
      cancelTimer = setTimeout(() => runtime.kill(), CANCEL_GRACE_MS);
    };
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
    return runtime.request('run', args, runId).then(
      (result) => result,
      (error: unknown) => {
        if (stalled) throw new RuntimeFailure('exited', `runtime on ${this.deviceId} sent nothing for ${this.stallMs / 1000}s while running ${args.shard}; it was killed and will be restarted`);
        throw error;
      },
    ).finally(() => {
      clearInterval(watchdog);
      clearTimeout(cancelTimer);
      hooks.signal?.removeEventListener('abort', onAbort);
      runtime.off('progress', onProgress);
      runtime.off('log', onLog);
    });
  }

  async shutdown(): Promise<void> {
    await this.runtime?.shutdown();
    this.runtime = null;
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
