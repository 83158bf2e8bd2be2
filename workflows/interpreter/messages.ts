// Everything that crosses the boundary of the interpreter workflow: its input and result, the
// step activity's task and result, signals and the `progress` query. Plain types (and Temporal
// message definitions) only, so both workflow code and clients can import this file.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Dag, JsonValue } from '../dsl/types';

export interface InterpreterOptions {
  /** Tasks a device holds at once (running + queued next); 2 hides the hand-over gap. */
  gpuSlotsPerDevice: number;
  /** Scatters over more items than this run in child workflows of this many items each. */
  scatterBatchSize: number;
  /** Child batch workflows of one process running at once. */
  maxConcurrentBatches: number;
  /** cpu steps of one scatter (inline, or within one batch) scheduled at once. */
  scatterConcurrency: number;
  /**
   * Minimum interval between progress signals a running step sends (0 disables them). Each signal
   * costs the run ~4 history events, so this bounds history growth: at 30 s, a run of 1,600
   * one-minute shards adds ~3 signals per shard, ~20k events, below the 50k limit.
   */
  progressIntervalMs: number;
  /** A device whose task stopped heartbeating gets no work for this long. */
  stalledCooldownMs: number;
}

export const defaultInterpreterOptions: InterpreterOptions = {
  gpuSlotsPerDevice: 2,
  scatterBatchSize: 500,
  maxConcurrentBatches: 4,
  scatterConcurrency: 100,
  progressIntervalMs: 30_000,
  stalledCooldownMs: 60_000,
};

export interface RunPipelineInput {
  dag: Dag;
  /** Values of the pipeline's inputs (`dag.inputs`). */
  inputs: Record<string, JsonValue>;
  /** Root of step outputs and the cache: `<workDir>/<process>/<cache key>/`. */
  workDir: string;
  taskQueuePrefix: string;
  /** Device ids (`<host>.gpu<N>`) known at start; more may join by signal. */
  devices: string[];
  options?: Partial<InterpreterOptions>;
  /** The server has the run search attributes (workflows/search-attributes.ts): keep them current. */
  searchAttributes?: boolean;
}

export interface RunPipelineResult {
  outputs: Record<string, JsonValue>;
  progress: ProgressReport;
}

/** What the step activity runs: one process on one set of inputs (one item of a scatter). */
export interface StepTask {
  /** Workflow id of the run (progress signals go there, also from child batches). */
  runWorkflowId: string;
  workDir: string;
  process: string;
  implementation: string;
  version: string;
  params: Record<string, JsonValue>;
  cache: boolean;
  inputs: Record<string, JsonValue>;
  /** Index within a scatter, null for a single task or a group. */
  item: number | null;
  /**
   * Several items of a grouped gpu scatter run as one task: the scattered port holds their list
   * (`inputs[port]`), `items` their indexes. Each item is cached and marked on its own.
   */
  group: { port: string; items: number[] } | null;
  /** Attempts the workflow already made elsewhere (gpu reassignments), 0 at first. */
  previousAttempts: number;
  progressIntervalMs: number;
}

export interface StepResult {
  /** A group's are in `items`. */
  outputs: Record<string, JsonValue>;
  cached: boolean;
  key: string;
  device: string | null;
  seconds: number;
  /** For a group: each item's outputs, whether they came from the cache, and their key, in order. */
  items?: Array<{ outputs: Record<string, JsonValue>; cached: boolean; key: string }>;
}

export interface StepHeartbeat {
  process: string;
  item: number | null;
  device: string | null;
  details: Record<string, JsonValue>;
  /** Wall-clock ISO time on the worker. */
  at: string;
}

export interface StepCounts {
  /** Tasks of this step, once known (a scatter's size is known when its input is). */
  total: number | null;
  pending: number;
  running: number;
  done: number;
  failed: number;
  cached: number;
  /** gpu steps: the work in their tasks (rows of the scattered files, e.g. frames), once known, and how much is done. */
  unitsTotal: number | null;
  unitsDone: number;
  latestHeartbeat: StepHeartbeat | null;
}

export interface DeviceReport {
  /** `failed`: taken out of the run after failing several tasks in a row. */
  state: 'active' | 'stalled' | 'left' | 'failed';
  inFlight: number;
  done: number;
  /** Work (units, e.g. frames) of the tasks this device completed. */
  unitsDone: number;
  /** Its measured speed (computed units per second of its busy time), once it computed anything. */
  unitsPerSecond: number | null;
  /** Times a new worker took the device over from one that was gone. */
  restarts: number;
  /** Times it stopped making progress (a lost heartbeat, or a runtime that stopped answering). */
  stalls: number;
  latestHeartbeat: StepHeartbeat | null;
}

/** Something about a device the user should hear of: it stalled, was taken out, was replaced. */
export interface DeviceNotice {
  /** Workflow time, Unix ms. */
  at: number;
  device: string;
  kind: 'stalled' | 'taken out' | 'worker replaced';
  message: string;
}

export interface ProgressReport {
  pipeline: string;
  state: 'running' | 'completed' | 'failed';
  steps: Record<string, StepCounts>;
  devices: Record<string, DeviceReport>;
  /** The latest device notices, oldest first. */
  notices: DeviceNotice[];
  outputs: Record<string, JsonValue> | null;
  error: string | null;
}

export interface BatchProgress {
  process: string;
  batch: number;
  done: number;
  cached: number;
}

export const progressQuery = defineQuery<ProgressReport>('progress');
/**
 * From a worker (or the CLI) when a device becomes available to this run, and again every few
 * seconds. `session` identifies the worker process: a new one for a known device means the old
 * worker is gone, and the tasks it held are handed out again at once.
 */
export const deviceJoinedSignal = defineSignal<[{ device: string; session?: string }]>('deviceJoined');
/** From a worker about to stop: no new work for the device; its unfinished tasks move elsewhere. */
export const deviceLeftSignal = defineSignal<[{ device: string }]>('deviceLeft');
/** From the step activity, throttled: its latest heartbeat details. */
export const stepHeartbeatSignal = defineSignal<[StepHeartbeat]>('stepHeartbeat');
/** From a child batch workflow: items finished since its last report. */
export const batchProgressSignal = defineSignal<[BatchProgress]>('batchProgress');

/**
 * The failure type a gpu implementation uses when its device stopped making progress (e.g. its
 * runtime hung and was killed): the pool then treats the device as stalled, like a lost heartbeat.
 */
export const DEVICE_STALLED = 'DeviceStalled';

/** Name of the one activity every worker registers; it dispatches to implementations. */
export interface StepActivities {
  runStep(task: StepTask): Promise<StepResult>;
}
