// The runtime protocol (docs/runtime-protocol.md, version 1), declared once: these zod schemas
// validate what the GPU activity sends and receives, and their JSON Schema export
// (gpu-runtime/virnucpro_runtime/protocol.schema.json, written by `protocol-schema.ts`) is what
// the Python runtime validates against. A message that does not validate is a bug on the other
// side, reported with the offending line rather than acted on.
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;

export const errorType = z.enum(['bad_request', 'not_loaded', 'input', 'weights', 'oom', 'cancelled', 'internal']);
export type RuntimeErrorType = z.infer<typeof errorType>;

const path = z.string().min(1);
const positiveInt = z.number().int().positive();

/**
 * What a runtime loads and how it computes: every field that can change a score is here, so it
 * is part of the embed step's parameters (its cache key). Omitted or null: the runtime's default,
 * which it reports back, resolved, in the load result's `numerics`.
 */
export const loadArgs = z.strictObject({
  esm2: path.nullish().describe('a path or null'),
  dnabert: path.nullish().describe('a path or null'),
  classifier: path.nullish().describe('a path or null'),
  synthetic: z.enum(['tiny', 'full']).nullish().describe('null, "tiny" or "full"'),
  precision: z.enum(['bf16', 'fp8', 'fp32']).nullish().describe('"bf16", "fp8", "fp32" or null'),
  token_budget: positiveInt.nullish().describe('a positive integer or null'),
  dnabert_token_budget: positiveInt.nullish().describe('a positive integer or null'),
  compile_esm2: z.boolean().nullish().describe('a boolean or null'),
  compile_dnabert: z.boolean().nullish().describe('a boolean or null'),
});
export type LoadArgs = z.infer<typeof loadArgs>;

export const runArgs = z.strictObject({
  shard: path.describe('a path'),
  out: path.describe('a path'),
  embeddings: z.boolean().optional().describe('a boolean'),
});
export type RunArgs = z.infer<typeof runArgs>;

export const healthResult = z.object({
  device: z.string(),
  device_name: z.string(),
  torch: z.string(),
  loaded: z.boolean(),
  busy: z.boolean(),
  free_memory_bytes: z.number().nullable(),
});

/**
 * Everything that decides how a loaded runtime computes, resolved. Two runtimes that report
 * the same numerics give bit-identical scores for the same shard; `id` is its digest.
 */
export const numerics = z.object({
  id: z.string().regex(/^[0-9a-f]{16}$/),
  device_name: z.string(),
  torch: z.string(),
  precision: z.record(z.string(), z.string()),
  esm2_token_budget: positiveInt,
  dnabert_token_budget: positiveInt,
  compile_esm2: z.boolean(),
  /** The compiled ESM-2 layer's kernel choices (gpu-runtime compiled.py); null when eager. */
  esm2_arithmetic: z.record(z.string(), z.string()).nullable(),
  compile_dnabert: z.boolean(),
  inductor_deterministic: z.boolean(),
});
export type Numerics = z.infer<typeof numerics>;

export const loadResult = z.object({
  models: z.record(z.string(), z.unknown()),
  seconds: z.number(),
  numerics,
  /** Where the seconds went (weights read or taken from the converted cache, compile, warm-up). */
  phases: z.record(z.string(), z.number()),
});
export const runResult = z.object({
  frames: z.number().int().nonnegative(),
  out: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
  seconds: z.number(),
  esm2_tokens: z.number().int().nonnegative(),
  dnabert_tokens: z.number().int().nonnegative(),
  /** Wall-clock (Unix seconds) of the shard's first batch reaching the device, and of its end. */
  started_at: z.number(),
  finished_at: z.number(),
  /** Batches retried smaller after running out of memory (0 normally). */
  oom_retries: z.number().int().nonnegative(),
  peak_memory_bytes: z.number().int().nullable(),
  numerics: numerics.shape.id,
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
  cancel: { args: z.strictObject({ target: path.describe('the id of a run request') }), result: cancelResult },
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

/** The protocol as JSON Schema, for the Python side (protocol.schema.json). */
export function protocolJsonSchema(): Record<string, unknown> {
  const schema = (type: z.ZodType, io: 'input' | 'output') => {
    const { $schema: _, ...rest } = z.toJSONSchema(type, { io }) as Record<string, unknown>;
    return rest;
  };
  const ops = Object.entries(operations);
  return {
    $comment: 'Generated from activities/gpu/protocol.ts by `node dist/activities/gpu/protocol-schema.js`; do not edit.',
    version: PROTOCOL_VERSION,
    error_types: errorType.options,
    // What the runtime accepts (the activity may omit optional arguments)...
    requests: Object.fromEntries(ops.map(([op, o]) => [op, schema(o.args, 'input')])),
    // ...and what it must send back.
    results: Object.fromEntries(ops.map(([op, o]) => [op, schema(o.result, 'output')])),
    events: { progress: schema(progressEvent, 'output'), log: schema(logEvent, 'output') },
  };
}
