// The TypeScript side of docs/runtime-protocol.md (version 1): request shapes and zod schemas for
// everything the runtime sends back. A message that does not validate is a runtime bug, reported
// with the offending line rather than acted on.
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;

export const errorType = z.enum(['bad_request', 'not_loaded', 'input', 'weights', 'oom', 'cancelled', 'internal']);
export type RuntimeErrorType = z.infer<typeof errorType>;

export const loadArgs = z.strictObject({
  esm2: z.string().nullable(),
  dnabert: z.string().nullable(),
  classifier: z.string().nullable(),
  synthetic: z.enum(['tiny', 'full']).nullable(),
  dtype: z.enum(['bfloat16', 'float32']).nullable(),
  token_budget: z.number().int().positive().nullable(),
});
export type LoadArgs = z.infer<typeof loadArgs>;

export const runArgs = z.strictObject({ shard: z.string().min(1), out: z.string().min(1), embeddings: z.boolean() });
export type RunArgs = z.infer<typeof runArgs>;

export const healthResult = z.object({
  device: z.string(),
  device_name: z.string(),
  torch: z.string(),
  loaded: z.boolean(),
  busy: z.boolean(),
  free_memory_bytes: z.number().nullable(),
});
export const loadResult = z.object({ models: z.record(z.string(), z.unknown()), seconds: z.number(), token_budget: z.number().int() });
export const runResult = z.object({
  frames: z.number().int().nonnegative(),
  out: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
  seconds: z.number(),
  esm2_tokens: z.number().int().nonnegative(),
  dnabert_tokens: z.number().int().nonnegative(),
});
export const cancelResult = z.object({ cancelled: z.boolean() });
export const shutdownResult = z.object({});

export type HealthResult = z.infer<typeof healthResult>;
export type LoadResult = z.infer<typeof loadResult>;
export type RunResult = z.infer<typeof runResult>;

/** Request op -> (args, result) schemas. */
export const operations = {
  health: { args: z.strictObject({}), result: healthResult },
  load: { args: loadArgs, result: loadResult },
  run: { args: runArgs, result: runResult },
  cancel: { args: z.strictObject({ target: z.string().min(1) }), result: cancelResult },
  shutdown: { args: z.strictObject({}), result: shutdownResult },
} as const;
export type Operation = keyof typeof operations;

const version = z.literal(PROTOCOL_VERSION);

export const progressEvent = z.object({
  v: version,
  event: z.literal('progress'),
  id: z.string(),
  frames_done: z.number().int().nonnegative(),
  frames_total: z.number().int().nonnegative(),
  tokens_per_s: z.number(),
  frames_per_s: z.number(),
  gpu_memory_bytes: z.number().nullable(),
  gpu_utilization: z.number().nullable(),
  elapsed_s: z.number(),
});
export type ProgressEvent = z.infer<typeof progressEvent>;

export const logEvent = z.object({ v: version, event: z.literal('log'), level: z.enum(['debug', 'info', 'warning', 'error']), message: z.string() });
export type LogEvent = z.infer<typeof logEvent>;

const okReply = z.object({ v: version, id: z.string(), ok: z.literal(true), result: z.record(z.string(), z.unknown()) });
// A request the runtime could not even parse is answered with a null id.
const errorReply = z.object({
  v: version,
  id: z.string().nullable(),
  ok: z.literal(false),
  error: z.object({ type: errorType, message: z.string() }),
});

export const runtimeMessage = z.union([progressEvent, logEvent, okReply, errorReply]);
export type RuntimeMessage = z.infer<typeof runtimeMessage>;
