// The contract between the step activity and the code that does a step's work. An implementation is an
// async function (inputs, ctx) => outputs, registered by name with zod schemas for both sides;
// the generic step activity (step-activity.ts) validates, caches and records around it.
import { z } from 'zod';

/**
 * A file handed between steps. Only path, size, rows and checksum travel through Temporal; a
 * consumer trusts the file through its `.done` marker (activities/files/atomic.ts). The cache key
 * uses `sha256`, not `path`, so identical content at another path still hits the cache.
 */
export const fileRef = z.strictObject({
  path: z.string().min(1),
  rows: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type FileRef = z.infer<typeof fileRef>;

export interface StepContext<Params = Record<string, unknown>> {
  /** The step's own output folder (`<workDir>/<process>/<cache key>/`), created before `run`. */
  workDir: string;
  params: Params;
  process: string;
  /** 1 for the first try; counts Temporal retries and GPU reassignments. */
  attempt: number;
  /** `<host>.gpu<N>` for gpu processes, null on cpu workers. */
  device: string | null;
  /**
   * Report progress (e.g. `{frames_done, tokens_per_s}`). Also keeps the task alive: a gpu task
   * that stops heartbeating for the process's heartbeat timeout is reassigned to another device.
   */
  heartbeat(details?: Record<string, unknown>): void;
  /** Aborted when the step is cancelled or its heartbeat timed out; stop work promptly. */
  signal: AbortSignal;
  /**
   * For `queuesOnDevice` implementations: call once this step's work is queued on its device
   * (sent to the device's runtime). The device's next step hands over its own work only after,
   * so the device computes them in the order the run dispatched them.
   */
  queuedOnDevice(): void;
  /** Write `<workDir>/<name>` atomically with its `.done` marker; returns the reference to output. */
  writeFile(name: string, data: string | Uint8Array, rows: number): Promise<FileRef>;
  /**
   * Reference a file another process wrote. With `claimed` (what that process reported), the
   * file's own `.done` marker must agree with the claim and the file's size (trusted, not hashed
   * again); without, the file is hashed and marked here.
   */
  adoptFile(path: string, rows: number, claimed?: { sha256: string; bytes: number }): Promise<FileRef>;
}

export interface Implementation<I = unknown, O = unknown, P = unknown> {
  name: string;
  inputs: z.ZodType<I>;
  outputs: z.ZodType<O>;
  params: z.ZodType<P>;
  /**
   * The implementation queues its own work on the device (as the resident runtime does), so the
   * items of a group may all be handed to it at once: it gets the next ready while one computes.
   * false: a group's items are run one after the other.
   */
  queuesOnDevice: boolean;
  run(inputs: I, ctx: StepContext<P>): Promise<O>;
}

/**
 * Declare an implementation. `inputs` keys are the process's input port names (a scattered port
 * receives one item; a gathered port the list), `outputs` keys its output port names.
 */
export function defineImplementation<I, O, P = Record<string, never>>(spec: {
  name: string;
  inputs: z.ZodType<I>;
  outputs: z.ZodType<O>;
  params?: z.ZodType<P>;
  queuesOnDevice?: boolean;
  run(inputs: I, ctx: StepContext<P>): Promise<O>;
}): Implementation<I, O, P> {
  return { ...spec, params: spec.params ?? (z.object({}) as unknown as z.ZodType<P>), queuesOnDevice: spec.queuesOnDevice ?? false };
}
