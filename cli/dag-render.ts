// Drawings of a Dag for `virnucpro dag`: Mermaid (renders on GitHub and in the Temporal UI's
// markdown) and Graphviz dot. Nodes: pipeline inputs, processes (implementation and resource),
// pipeline outputs; edges: channels, labelled with the port and its scatter/gather mode.
import { PIPELINE_INPUTS, splitChannel, type Dag } from '../workflows/dsl/types';

interface Edge {
  from: string;
  to: string;
  label: string;
}

function graph(dag: Dag): { inputs: string[]; outputs: string[]; edges: Edge[] } {
  const node = (channel: string) => {
    const { source, port } = splitChannel(channel);
    return source === PIPELINE_INPUTS ? `input_${port}` : source;
  };
  const edges: Edge[] = [];
  for (const process of dag.processes) {
    for (const [port, input] of Object.entries(process.inputs)) {
      const mode = input.mode === 'one' ? '' : ` (${input.mode})`;
      edges.push({ from: node(input.from), to: process.name, label: `${splitChannel(input.from).port} -> ${port}${mode}` });
    }
  }
  for (const [name, channel] of Object.entries(dag.outputs)) edges.push({ from: node(channel), to: `output_${name}`, label: splitChannel(channel).port });
  return { inputs: Object.keys(dag.inputs), outputs: Object.keys(dag.outputs), edges };
}

const quote = (text: string) => text.replace(/"/g, "'");

export function renderMermaid(dag: Dag): string {
  const { inputs, outputs, edges } = graph(dag);
  const lines = ['flowchart LR'];
  for (const name of inputs) lines.push(`  input_${name}[/"input: ${quote(name)}"/]`);
  for (const p of dag.processes) lines.push(`  ${p.name}["${p.name}<br/>${quote(p.implementation)} [${p.resource}]"]`);
  for (const name of outputs) lines.push(`  output_${name}[\\"output: ${quote(name)}"\\]`);
  for (const e of edges) lines.push(`  ${e.from} -- "${quote(e.label)}" --> ${e.to}`);
  return lines.join('\n') + '\n';
}

export function renderDot(dag: Dag): string {
  const { inputs, outputs, edges } = graph(dag);
  const lines = [`digraph "${quote(dag.name)}" {`, '  rankdir=LR;', '  node [fontname="Helvetica"];'];
  for (const name of inputs) lines.push(`  "input_${name}" [shape=parallelogram, label="input: ${quote(name)}"];`);
  for (const p of dag.processes) {
    lines.push(`  "${p.name}" [shape=box, ${p.resource === 'gpu' ? 'style=filled, fillcolor="#dde8ff", ' : ''}label="${p.name}\\n${quote(p.implementation)} [${p.resource}]"];`);
  }
  for (const name of outputs) lines.push(`  "output_${name}" [shape=invhouse, label="output: ${quote(name)}"];`);
  for (const e of edges) lines.push(`  "${e.from}" -> "${e.to}" [label="${quote(e.label)}"];`);
  lines.push('}');
  return lines.join('\n') + '\n';
}
