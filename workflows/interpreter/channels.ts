// Values along a Dag's channels (workflow code: pure): a process's inputs, taken from the
// pipeline's inputs and its upstream processes' outputs; a scattered process's outputs as lists;
// the pipeline's outputs.
import { Dag, JsonValue, PIPELINE_INPUTS, ProcessSpec, splitChannel } from '../dsl/types';

/** A process's outputs (or inputs), by port. */
export type Outputs = Record<string, JsonValue>;

/** The processes `spec` reads from, each once, in the order of its input ports. */
export function upstreamOf(spec: ProcessSpec): string[] {
  const sources = Object.values(spec.inputs).map((port) => splitChannel(port.from).source);
  return sources.filter((source, index) => source !== PIPELINE_INPUTS && sources.indexOf(source) === index);
}

/** `spec`'s inputs by port, once every upstream process (`upstream`, by name) has finished. */
export function processInputs(spec: ProcessSpec, pipelineInputs: Outputs, upstream: Map<string, Outputs>): Outputs {
  const inputs: Outputs = {};
  for (const [name, port] of Object.entries(spec.inputs)) {
    const { source, port: channelPort } = splitChannel(port.from);
    inputs[name] = source === PIPELINE_INPUTS ? pipelineInputs[channelPort] : upstream.get(source)![channelPort];
  }
  return inputs;
}

/** A scattered process's outputs as consumers see them: each port the list of the items' values, in item order. */
export function gathered(spec: ProcessSpec, perItem: Outputs[]): Outputs {
  const collected: Outputs = {};
  for (const port of Object.keys(spec.outputs)) collected[port] = perItem.map((outputs) => outputs[port]);
  return collected;
}

export function pipelineOutputs(dag: Dag, finished: Map<string, Outputs>): Outputs {
  const outputs: Outputs = {};
  for (const [name, channel] of Object.entries(dag.outputs)) {
    const { source, port } = splitChannel(channel);
    outputs[name] = finished.get(source)![port];
  }
  return outputs;
}
