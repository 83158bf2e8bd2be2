// Pipeline definitions: the author writes an object literal, `definePipeline` checks its shape
// (zod) and its wiring (unknown channels, type mismatches, cycles) and returns the plain `Dag`
// the interpreter runs. Errors name the process and port so a broken pipeline fails at load time.
import { z } from 'zod';
import { Dag, InputPortSpec, PIPELINE_INPUTS, ProcessSpec, splitChannel } from './types';
import { parseDuration } from './duration';

const identifier = z.string().regex(/^[a-z][A-Za-z0-9_]*$/, 'must be an identifier (letter first, then letters, digits, _)');
const typeName = z.string().regex(/^[A-Za-z][A-Za-z0-9_.:-]*(\[\])?$/, 'must be a type name, optionally ending in []');
const channel = z.string().regex(/^[a-z][A-Za-z0-9_]*\.[a-z][A-Za-z0-9_]*$/, 'must be "<process>.<port>" or "inputs.<name>"');
const duration = z.union([z.number().int().positive(), z.string()]).transform((value, ctx) => {
  try {
    return parseDuration(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});
const json: z.ZodType<unknown> = z.json();

const inputPortDefinition = z.strictObject({
  from: channel,
  type: typeName,
  mode: z.enum(['one', 'scatter', 'gather']).default('one'),
});

const processDefinition = z.strictObject({
  implementation: z.string().min(1),
  version: z.string().min(1).default('1'),
  resource: z.enum(['cpu', 'gpu']),
  inputs: z.record(identifier, inputPortDefinition).default({}),
  outputs: z.record(identifier, typeName),
  params: z.record(z.string(), json).default({}),
  retry: z
    .strictObject({
      maximumAttempts: z.number().int().min(1).default(3),
      initialInterval: duration.default(1000),
      backoffCoefficient: z.number().min(1).default(2),
      maximumInterval: duration.default(60_000),
    })
    .prefault({}),
  timeouts: z
    .strictObject({
      startToClose: duration.default(3_600_000),
      heartbeat: duration.nullable().default(null),
    })
    .prefault({}),
  cache: z.boolean().default(true),
  group: z.boolean().default(false),
});

const pipelineDefinition = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be lower-case letters, digits and -'),
  version: z.string().min(1).default('1'),
  description: z.string().default(''),
  inputs: z.record(identifier, typeName).default({}),
  processes: z
    .record(identifier, processDefinition)
    .refine((processes) => !(PIPELINE_INPUTS in processes), `"${PIPELINE_INPUTS}" is reserved for pipeline inputs`),
  outputs: z.record(identifier, channel).default({}),
});

/** What a pipeline author writes (durations as ms or strings like "30s", "10m"). */
export type PipelineDefinition = z.input<typeof pipelineDefinition>;

export class DagValidationError extends Error {
  constructor(
    readonly pipeline: string,
    readonly problems: string[],
  ) {
    super(`pipeline "${pipeline}" is invalid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'DagValidationError';
  }
}

export function definePipeline(definition: PipelineDefinition): Dag {
  const parsed = pipelineDefinition.safeParse(definition);
  const name = typeof definition?.name === 'string' ? definition.name : '<unnamed>';
  if (!parsed.success) {
    throw new DagValidationError(
      name,
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '<root>'}: ${issue.message}`),
    );
  }
  const def = parsed.data;
  const processes: ProcessSpec[] = Object.entries(def.processes).map(([processName, p]) => ({
    name: processName,
    implementation: p.implementation,
    version: p.version,
    resource: p.resource,
    inputs: p.inputs as Record<string, InputPortSpec>,
    outputs: p.outputs,
    params: p.params as ProcessSpec['params'],
    retry: {
      maximumAttempts: p.retry.maximumAttempts,
      initialIntervalMs: p.retry.initialInterval,
      backoffCoefficient: p.retry.backoffCoefficient,
      maximumIntervalMs: p.retry.maximumInterval,
    },
    timeouts: { startToCloseMs: p.timeouts.startToClose, heartbeatMs: p.timeouts.heartbeat },
    cache: p.cache,
    group: p.group,
  }));
  const problems = [...checkWiring(def.inputs, processes), ...checkOutputs(def.outputs, processes)];
  if (problems.length === 0) {
    const ordered = topologicalOrder(processes);
    if ('cycle' in ordered) problems.push(`cycle between processes: ${ordered.cycle.join(' -> ')}`);
    else return { name: def.name, version: def.version, description: def.description, inputs: def.inputs, processes: ordered.order, outputs: def.outputs };
  }
  throw new DagValidationError(def.name, problems);
}

/** The type a channel carries as seen by a consumer: a scattered process's output `T` is `T[]`. */
function channelType(
  channelName: string,
  pipelineInputs: Record<string, string>,
  byName: Map<string, ProcessSpec>,
): { type: string; scattered: boolean } | string {
  const { source, port } = splitChannel(channelName);
  if (source === PIPELINE_INPUTS) {
    const type = pipelineInputs[port];
    return type === undefined ? `pipeline has no input "${port}"` : { type, scattered: false };
  }
  const upstream = byName.get(source);
  if (!upstream) return `unknown process "${source}"`;
  const type = upstream.outputs[port];
  if (type === undefined) return `process "${source}" has no output "${port}"`;
  const scattered = Object.values(upstream.inputs).some((input) => input.mode === 'scatter');
  return scattered ? { type: `${type}[]`, scattered } : { type, scattered };
}

function checkWiring(pipelineInputs: Record<string, string>, processes: ProcessSpec[]): string[] {
  const byName = new Map(processes.map((p) => [p.name, p]));
  const problems: string[] = [];
  for (const process of processes) {
    const scatterPorts = Object.entries(process.inputs).filter(([, input]) => input.mode === 'scatter');
    if (process.group && (process.resource !== 'gpu' || scatterPorts.length === 0)) {
      problems.push(`process "${process.name}": group is for gpu processes that scatter`);
    }
    if (scatterPorts.length > 1) {
      problems.push(`process "${process.name}": scatters over ${scatterPorts.map(([p]) => `"${p}"`).join(' and ')}; at most one input may scatter`);
    }
    for (const [portName, input] of Object.entries(process.inputs)) {
      const where = `process "${process.name}" input "${portName}" (from ${input.from})`;
      const found = channelType(input.from, pipelineInputs, byName);
      if (typeof found === 'string') {
        problems.push(`${where}: ${found}`);
        continue;
      }
      if (input.mode === 'scatter') {
        if (found.type !== `${input.type}[]`) problems.push(`${where}: scatter needs a list of ${input.type} (${input.type}[]) but the channel carries ${found.type}`);
      } else if (input.mode === 'gather') {
        if (!found.scattered) problems.push(`${where}: gather needs a scattered process upstream`);
        else if (found.type !== input.type) problems.push(`${where}: type mismatch, port expects ${input.type} but gathering gives ${found.type}`);
      } else {
        if (found.scattered) problems.push(`${where}: upstream is scattered; use mode "gather" (type ${found.type}) or "scatter"`);
        else if (found.type !== input.type) problems.push(`${where}: type mismatch, port expects ${input.type} but the channel carries ${found.type}`);
      }
    }
  }
  return problems;
}

function checkOutputs(outputs: Record<string, string>, processes: ProcessSpec[]): string[] {
  const byName = new Map(processes.map((p) => [p.name, p]));
  return Object.entries(outputs).flatMap(([name, channelName]) => {
    const { source, port } = splitChannel(channelName);
    const process = byName.get(source);
    if (!process) return [`pipeline output "${name}": unknown process "${source}"`];
    if (!(port in process.outputs)) return [`pipeline output "${name}": process "${source}" has no output "${port}"`];
    return [];
  });
}

function upstreamProcesses(process: ProcessSpec): string[] {
  const names = Object.values(process.inputs)
    .map((input) => splitChannel(input.from).source)
    .filter((source) => source !== PIPELINE_INPUTS);
  return [...new Set(names)];
}

/** Kahn's algorithm; keeps the author's order among independent processes (stable rendering). */
function topologicalOrder(processes: ProcessSpec[]): { order: ProcessSpec[] } | { cycle: string[] } {
  const remaining = new Map(processes.map((p) => [p.name, p]));
  const order: ProcessSpec[] = [];
  while (remaining.size > 0) {
    const ready = [...remaining.values()].filter((p) => upstreamProcesses(p).every((u) => !remaining.has(u)));
    if (ready.length === 0) return { cycle: findCycle(remaining) };
    for (const p of ready) {
      order.push(p);
      remaining.delete(p.name);
    }
  }
  return { order };
}

function findCycle(remaining: Map<string, ProcessSpec>): string[] {
  // Every remaining process has a remaining upstream, so walking upstream must revisit one.
  const path: string[] = [];
  let current = remaining.keys().next().value as string;
  while (!path.includes(current)) {
    path.push(current);
    current = upstreamProcesses(remaining.get(current)!).find((u) => remaining.has(u))!;
  }
  return [...path.slice(path.indexOf(current)), current].reverse();
}
