// Drawings of a Dag: Mermaid (renders on GitHub and in markdown viewers) and Graphviz dot.
// Nodes are pipeline inputs, processes (with implementation and resource) and pipeline outputs;
// edges are channels labelled with their ports, scatter/gather marked.
import { Dag, PIPELINE_INPUTS, splitChannel } from './types';

interface Node {
  id: string;
  label: string;
  kind: 'input' | 'cpu' | 'gpu' | 'output';
}

interface Edge {
  from: string;
  to: string;
  label: string;
}

function graph(dag: Dag): { nodes: Node[]; edges: Edge[] } {
  const sourceNode = (channel: string): string => {
    const { source, port } = splitChannel(channel);
    return source === PIPELINE_INPUTS ? `in_${port}` : `p_${source}`;
  };
  const nodes: Node[] = [
    ...Object.entries(dag.inputs).map(([name, type]): Node => ({ id: `in_${name}`, label: `${name}: ${type}`, kind: 'input' })),
    ...dag.processes.map((p): Node => ({ id: `p_${p.name}`, label: `${p.name} [${p.resource}]\\n${p.implementation}`, kind: p.resource })),
    ...Object.keys(dag.outputs).map((name): Node => ({ id: `out_${name}`, label: name, kind: 'output' })),
  ];
  const edges: Edge[] = [];
  for (const p of dag.processes) {
    for (const [port, input] of Object.entries(p.inputs)) {
      const from = splitChannel(input.from).port;
      const label = from === port ? port : `${from} → ${port}`;
      edges.push({ from: sourceNode(input.from), to: `p_${p.name}`, label: input.mode === 'one' ? label : `${label} (${input.mode})` });
    }
  }
  for (const [name, channel] of Object.entries(dag.outputs)) {
    edges.push({ from: sourceNode(channel), to: `out_${name}`, label: splitChannel(channel).port });
  }
  return { nodes, edges };
}

const quoted = (text: string): string => text.replace(/"/g, '#quot;');

export function renderMermaid(dag: Dag): string {
  const { nodes, edges } = graph(dag);
  const shape = (node: Node): string => {
    const label = `"${quoted(node.label.replace('\\n', '<br/>'))}"`;
    if (node.kind === 'input') return `${node.id}[/${label}/]`;
    if (node.kind === 'output') return `${node.id}[\\${label}\\]`;
    return node.kind === 'gpu' ? `${node.id}[[${label}]]` : `${node.id}[${label}]`;
  };
  const lines = ['flowchart TD', ...nodes.map((n) => `  ${shape(n)}`), ...edges.map((e) => `  ${e.from} -->|"${quoted(e.label)}"| ${e.to}`)];
  lines.push('  classDef gpu fill:#fde2c8,stroke:#d9822b');
  const gpuNodes = nodes.filter((n) => n.kind === 'gpu').map((n) => n.id);
  if (gpuNodes.length > 0) lines.push(`  class ${gpuNodes.join(',')} gpu`);
  return lines.join('\n') + '\n';
}

export function renderDot(dag: Dag): string {
  const { nodes, edges } = graph(dag);
  const escape = (text: string): string => text.replace(/"/g, '\\"');
  const attributes = (node: Node): string => {
    if (node.kind === 'input' || node.kind === 'output') return 'shape=parallelogram';
    return node.kind === 'gpu' ? 'shape=box, style="rounded,filled", fillcolor="#fde2c8"' : 'shape=box, style=rounded';
  };
  return [
    `digraph "${escape(dag.name)}" {`,
    '  rankdir=TB;',
    ...nodes.map((n) => `  ${n.id} [label="${escape(n.label)}", ${attributes(n)}];`),
    ...edges.map((e) => `  ${e.from} -> ${e.to} [label="${escape(e.label)}"];`),
    '}',
    '',
  ].join('\n');
}
