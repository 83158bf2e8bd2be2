// The validated DAG as plain data. This is what the interpreter workflow receives, so it must
// stay JSON-serialisable and free of functions or classes (workflow code is pipeline-agnostic).

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Which workers run a process: `cpu` -> `<prefix>.cpu`, `gpu` -> one queue per device. */
export type Resource = 'cpu' | 'gpu';

/**
 * How an input port consumes its channel:
 * - `one`: the upstream value as is (upstream must not be scattered);
 * - `scatter`: upstream is a list `T[]`, this process runs once per item and sees `T`;
 * - `gather`: upstream is a scattered process; this process sees all its results as `T[]`.
 */
export type InputMode = 'one' | 'scatter' | 'gather';

export interface InputPortSpec {
  /** Type name as declared here; must match the channel's type (see `InputMode`). */
  type: string;
  /** Channel: `inputs.<name>` (a pipeline input) or `<process>.<output port>`. */
  from: string;
  mode: InputMode;
}

export interface RetrySpec {
  /** Total attempts including the first; for gpu processes also bounds reassignments. */
  maximumAttempts: number;
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
}

export interface TimeoutSpec {
  startToCloseMs: number;
  /** null: the implementation does not heartbeat, so a stall is only caught by startToClose. */
  heartbeatMs: number | null;
}

export interface ProcessSpec {
  name: string;
  /** Name of a registered implementation (see activities/registry.ts). */
  implementation: string;
  /** Bump to invalidate cached outputs when the implementation's behaviour changes. */
  version: string;
  resource: Resource;
  inputs: Record<string, InputPortSpec>;
  /** Output port name -> type name. */
  outputs: Record<string, string>;
  /** Static parameters; part of the cache key. */
  params: Record<string, JsonValue>;
  retry: RetrySpec;
  timeouts: TimeoutSpec;
  /** false: always run (no cache lookup, no step marker), e.g. for trivial or side-effect steps. */
  cache: boolean;
  /**
   * gpu scatters: the device pool hands a device several consecutive items per task, sized to the
   * device's share of the work left (large early, one item near the end); each item is still
   * cached and marked on its own (workflows/README.md, "Grouped gpu scatters").
   */
  group: boolean;
}

export interface Dag {
  name: string;
  version: string;
  description: string;
  /** Pipeline input name -> type name; values are supplied when a run starts. */
  inputs: Record<string, string>;
  /** Topologically sorted: every process comes after the processes it reads from. */
  processes: ProcessSpec[];
  /** Pipeline output name -> channel `<process>.<port>`. */
  outputs: Record<string, string>;
}

/** Channel source of pipeline inputs: `inputs.<name>`. */
export const PIPELINE_INPUTS = 'inputs';

export function splitChannel(channel: string): { source: string; port: string } {
  const dot = channel.indexOf('.');
  return { source: channel.slice(0, dot), port: channel.slice(dot + 1) };
}

/** A process with a scatter input runs once per item of that input. */
export function scatterPort(process: ProcessSpec): string | null {
  for (const [port, spec] of Object.entries(process.inputs)) {
    if (spec.mode === 'scatter') return port;
  }
  return null;
}
