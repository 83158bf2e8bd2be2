// Keeps one runtime process per device for the life of the worker, so the models load once and
// stay resident across shards. A runtime that died (crash, OOM kill, stall) is replaced by a
// fresh one on the next request; a changed model configuration is reloaded in place.
//
// Runs are sent to the runtime as soon as they arrive: it computes one shard at a time and reads
// and tokenises the next queued one meanwhile, so consecutive shards leave the GPU no gap. The
// device worker takes the next shard's step while one computes (workers.ts createGpuWorker) for
// this. Of the runs a runtime holds, the first (the one it computes) watches it for a stall; one
// queued behind it only waits, and a cancelled queued run is dropped by the runtime unstarted.
//
// A replacement runtime must compute exactly as the one it replaces, or a crash would change
// results: the first load of a configuration pins its resolved numerics (token budgets, precision,
// compilation; protocol.ts `numerics`), a replacement is loaded with the pinned budgets, and a
// replacement that reports other numerics is refused.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { LoadArgs, LoadResult, Numerics, ProgressEvent, RunArgs, RunResult } from './protocol';
import { RuntimeFailure, RuntimeLaunch, RuntimeProcess } from './runtime-process';

/** No message at all from a busy runtime for this long means it is stuck: kill and replace it. */
const DEFAULT_STALL_MS = 30_000;
/** After `cancel`, how long a run may take to stop before the runtime is killed. */
const CANCEL_GRACE_MS = 15_000;
/** Loading the full models from a slow disk onto a CPU takes minutes; a load this long is hung. */
const LOAD_TIMEOUT_MS = 30 * 60_000;
/** How often a caller waiting for a load is told so. */
const WAITING_TICK_MS = 5_000;
/**
 * How often a caller whose shard waits behind another is told so: each tell is an activity
 * heartbeat, whose answer is how a withdrawn step learns it; the sooner, the less of the
 * runtime's time a withdrawn shard can take (it is cancelled there once the step knows).
 */
const QUEUED_TICK_MS = 1_000;

export type WaitingPhase = 'starting' | 'loading' | 'queued';

export interface RunHooks {
  onProgress?(event: ProgressEvent): void;
  /** Called every few seconds while models load (which can take minutes) or the shard waits its turn. */
  onWaiting?(phase: WaitingPhase): void;
  /** Called once the shard is sent to the runtime, which computes runs in the order they arrive. */
  onSent?(): void;
  signal?: AbortSignal;
}

export type RuntimeRunResult = RunResult & { load: LoadResult; restarts: number };

/** The fields of two numerics that differ, as `name: a -> b`. */
export function numericsDifferences(pinned: Numerics, found: Numerics): string[] {
  const keys = Object.keys(pinned).filter((k) => k !== 'id') as (keyof Numerics)[];
  return keys
    .filter((k) => JSON.stringify(pinned[k]) !== JSON.stringify(found[k]))
    .map((k) => `${k}: ${JSON.stringify(pinned[k])} -> ${JSON.stringify(found[k])}`);
}

export class ResidentRuntime {
  private runtime: RuntimeProcess | null = null;
  private loaded: { key: string; result: LoadResult } | null = null;
  private loading: { key: string; runtime: RuntimeProcess; promise: Promise<LoadResult> } | null = null;
  /** Resolved numerics per load configuration, from the first runtime that loaded it. */
  private readonly pinned = new Map<string, Numerics>();
  /** Runtimes started for this device, including replacements after a death. */
  starts = 0;
  /** Runtimes started to replace one that died. */
  replacements = 0;
  /** Replacements already counted in a run's result: each is counted once (see `claimRestarts`). */
  private counted = 0;
  /** Runs sent while the runtime held another: it read and tokenised them ahead. */
  sentAhead = 0;
  /** The runs sent and not yet answered, in the order sent, with the runtime each went to. */
  private readonly outstanding: { runtime: RuntimeProcess; id: string }[] = [];

  constructor(
    readonly deviceId: string,
    readonly launch: RuntimeLaunch,
    private readonly stallMs = DEFAULT_STALL_MS,
  ) {}

  get pid(): number | undefined {
    return this.runtime?.alive ? this.runtime.pid : undefined;
  }

  /** The resolved numerics of `load` once a runtime has loaded it. */
  numericsOf(load: LoadArgs): Numerics | undefined {
    return this.pinned.get(loadKey(load));
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

  /** Loads `load` into the live runtime unless it is there already; one load at a time is sent. */
  private ensureLoaded(load: LoadArgs): Promise<{ runtime: RuntimeProcess; load: LoadResult }> {
    const runtime = this.current();
    const key = loadKey(load);
    if (this.loaded?.key === key) return Promise.resolve({ runtime, load: this.loaded.result });
    if (this.loading?.key === key && this.loading.runtime === runtime) {
      return this.loading.promise.then((result) => ({ runtime, load: result }));
    }
    const pinned = this.pinned.get(key);
    // A replacement plans with the pinned budgets, whatever it would derive itself.
    const args: LoadArgs = pinned ? { ...load, token_budget: pinned.esm2_token_budget, dnabert_token_budget: pinned.dnabert_token_budget } : load;
    const hung = setTimeout(() => runtime.kill(), LOAD_TIMEOUT_MS);
    const promise = runtime
      .request('load', args)
      .then((result) => {
        if (pinned) {
          const differences = numericsDifferences(pinned, result.numerics);
          if (differences.length > 0) {
            runtime.kill();
            throw new RuntimeFailure('internal', `the runtime restarted on ${this.deviceId} would compute differently from the one it replaces (${differences.join('; ')}); refusing it so that no result changes`);
          }
        } else {
          this.pinned.set(key, result.numerics);
        }
        if (runtime.alive) this.loaded = { key, result };
        return result;
      })
      .finally(() => {
        clearTimeout(hung);
        if (this.loading?.promise === promise) this.loading = null;
      });
    this.loading = { key, runtime, promise };
    return promise.then((result) => ({ runtime, load: result }));
  }

  /** Start the runtime process now (Python and PyTorch take seconds to start), without loading anything. */
  spawn(): void {
    this.current();
  }

  /** Start the runtime and load `load` now (e.g. while the reads are still being prepared). */
  preload(load: LoadArgs): Promise<LoadResult> {
    return this.ensureLoaded(load).then(({ load: result }) => result);
  }

  /**
   * Embed and classify one shard. The runtime works on one shard at a time; a second call while
   * the first computes queues its shard in the runtime, which prepares it meanwhile.
   */
  async run(load: LoadArgs, args: RunArgs, hooks: RunHooks = {}): Promise<RuntimeRunResult> {
    hooks.signal?.throwIfAborted();
    const replacedBefore = this.replacements;
    const attempt = async (phase: WaitingPhase): Promise<RuntimeRunResult> => {
      // Loaded already (the usual case for a queued shard): nothing to wait for, nothing to say.
      const loading = this.ensureLoaded(load);
      const loaded = this.runtime?.alive && this.loaded?.key === loadKey(load) ? await loading : await whileWaiting(loading, hooks, phase);
      const result = await this.watchRun(loaded.runtime, args, hooks);
      return { ...result, load: loaded.load, restarts: this.claimRestarts(replacedBefore) };
    };
    try {
      return await attempt('loading');
    } catch (error) {
      if (error instanceof RuntimeFailure && error.type === 'stalled') {
        // The shard goes to another device; this one gets a fresh runtime meanwhile.
        this.preload(load).catch(() => undefined);
        throw error;
      }
      // A runtime that died mid-shard (not one that refused the input) gets one fresh retry here.
      if (!(error instanceof RuntimeFailure) || error.type !== 'exited' || hooks.signal?.aborted) throw error;
      return attempt('starting');
    }
  }

  /**
   * The replacements since `since` that no earlier result counted. A runtime's death fails every
   * run outstanding on it (the one computing and those queued behind it), and each reruns; the
   * first to finish, the one that was computing, counts it, so a run's report shows one restart
   * per death, not one per shard that waited.
   */
  private claimRestarts(since: number): number {
    const restarts = Math.max(0, this.replacements - Math.max(since, this.counted));
    this.counted = this.replacements;
    return restarts;
  }

  private watchRun(runtime: RuntimeProcess, args: RunArgs, hooks: RunHooks): Promise<RunResult> {
    // Withdrawn while its runtime loaded: never sent.
    hooks.signal?.throwIfAborted();
    const runId = randomUUID();
    const entry = { runtime, id: runId };
    if (this.outstanding.some((o) => o.runtime === runtime)) this.sentAhead += 1;
    this.outstanding.push(entry);
    // The first run outstanding on a runtime is the one it computes (or prepares next).
    const first = () => this.outstanding.find((o) => o.runtime === runtime) === entry;
    let lastHeard = Date.now();
    let started = false;
    const onProgress = (event: ProgressEvent) => {
      lastHeard = Date.now();
      if (event.id === runId) {
        started = true;
        hooks.onProgress?.(event);
      }
    };
    const onLog = () => {
      lastHeard = Date.now();
    };
    runtime.on('progress', onProgress);
    runtime.on('log', onLog);
    let stalled = false;
    // Only the first run watches: all hear the same runtime, and one that stalls is the first's
    // failure (those queued behind it see the runtime exit and are retried or withdrawn).
    const watchdog = setInterval(() => {
      if (first() && Date.now() - lastHeard > this.stallMs) {
        stalled = true;
        runtime.kill();
      }
    }, Math.min(5_000, this.stallMs));
    // Until the runtime starts this shard (it may be computing the one before), say it waits.
    const queued = setInterval(() => {
      if (!started) hooks.onWaiting?.('queued');
    }, QUEUED_TICK_MS);
    let cancelTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      runtime.request('cancel', { target: runId }).catch(() => undefined);
      cancelTimer = setTimeout(() => runtime.kill(), CANCEL_GRACE_MS);
    };
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
    const answer = runtime.request('run', args, runId);
    hooks.onSent?.();
    return answer
      .then(
        (result) => result,
        (error: unknown) => {
          if (stalled) throw new RuntimeFailure('stalled', `the runtime on ${this.deviceId} sent nothing for ${this.stallMs / 1000} s while running ${args.shard}; it was killed and is being restarted`);
          throw error;
        },
      )
      .finally(() => {
        this.outstanding.splice(this.outstanding.indexOf(entry), 1);
        clearInterval(watchdog);
        clearInterval(queued);
        clearTimeout(cancelTimer);
        hooks.signal?.removeEventListener('abort', onAbort);
        runtime.off('progress', onProgress);
        runtime.off('log', onLog);
      });
  }

  /**
   * Stop the runtime: gracefully, so a shard in progress ends cleanly; at once while it only loads
   * models no run waits for (an early load for a run that turned out finished, or another
   * worker's devices): a load cannot be interrupted, and what it writes to the state directory is
   * written atomically, so waiting for it would only delay the exit.
   */
  async shutdown(): Promise<void> {
    const idleLoad = this.loading !== null && this.outstanding.length === 0;
    await this.runtime?.shutdown(idleLoad ? 0 : undefined);
    this.runtime = null;
    this.loaded = null;
  }
}

function loadKey(load: LoadArgs): string {
  return JSON.stringify(Object.entries(load).filter(([, v]) => v !== undefined && v !== null).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** `promise`, telling `hooks` every few seconds that the caller still waits in `phase`. */
async function whileWaiting<T>(promise: Promise<T>, hooks: RunHooks, phase: WaitingPhase): Promise<T> {
  hooks.onWaiting?.(phase);
  const ticker = setInterval(() => hooks.onWaiting?.(phase), WAITING_TICK_MS);
  try {
    return await promise;
  } finally {
    clearInterval(ticker);
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
