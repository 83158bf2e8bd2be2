// Pipeline definitions are validated when defined; broken wiring names the process and port.
import assert from 'node:assert/strict';
import { ActivityRegistry, allImplementations } from '../../activities/registry';
import { DagValidationError, definePipeline, PipelineDefinition } from '../../workflows/dsl/define';
import { renderDot, renderMermaid } from '../../workflows/dsl/render';
import { pipelines } from '../../workflows/pipelines';
import { selftest } from '../../workflows/pipelines/selftest';

function base(): PipelineDefinition {
  return {
    name: 'wiring',
    inputs: { reads: 'file' },
    processes: {
      split: { implementation: 'x.split', resource: 'cpu', inputs: { reads: { from: 'inputs.reads', type: 'file' } }, outputs: { shards: 'shard[]' } },
      embed: {
        implementation: 'x.embed',
        resource: 'gpu',
        inputs: { shard: { from: 'split.shards', type: 'shard', mode: 'scatter' } },
        outputs: { result: 'result' },
        timeouts: { startToClose: '10m', heartbeat: '30s' },
      },
      merge: { implementation: 'x.merge', resource: 'cpu', inputs: { results: { from: 'embed.result', type: 'result[]', mode: 'gather' } }, outputs: { table: 'file' } },
    },
    outputs: { table: 'merge.table' },
  };
}

function problemsOf(definition: PipelineDefinition): string[] {
  try {
    definePipeline(definition);
  } catch (error) {
    assert.ok(error instanceof DagValidationError, String(error));
    return error.problems;
  }
  return assert.fail('the definition should be rejected');
}

describe('dsl: validation', () => {
  it('accepts a valid pipeline, normalising durations and defaults', () => {
    const dag = definePipeline(base());
    assert.deepEqual(dag.processes.map((p) => p.name), ['split', 'embed', 'merge']);
    const embed = dag.processes[1];
    assert.deepEqual(embed.timeouts, { startToCloseMs: 600_000, heartbeatMs: 30_000 });
    assert.equal(embed.retry.maximumAttempts, 3);
    assert.equal(embed.cache, true);
    assert.deepEqual(JSON.parse(JSON.stringify(dag)), dag, 'the Dag is plain JSON data');
  });

  it('orders processes topologically whatever the declaration order', () => {
    const definition = base();
    const { merge, embed, split } = definition.processes;
    const dag = definePipeline({ ...definition, processes: { merge, embed, split } });
    assert.deepEqual(dag.processes.map((p) => p.name), ['split', 'embed', 'merge']);
  });

  it('rejects an unknown upstream process or port, naming process and port', () => {
    const definition = base();
    definition.processes.embed.inputs!.shard.from = 'splitter.shards';
    definition.processes.merge.inputs!.results.from = 'embed.results';
    assert.deepEqual(problemsOf(definition), [
      'process "embed" input "shard" (from splitter.shards): unknown process "splitter"',
      'process "merge" input "results" (from embed.results): process "embed" has no output "results"',
    ]);
  });

  it('rejects an unknown pipeline input and an unknown pipeline output', () => {
    const definition = base();
    definition.processes.split.inputs!.reads.from = 'inputs.fasta';
    definition.outputs = { table: 'merge.tables' };
    assert.deepEqual(problemsOf(definition), [
      'process "split" input "reads" (from inputs.fasta): pipeline has no input "fasta"',
      'pipeline output "table": process "merge" has no output "tables"',
    ]);
  });

  it('rejects type mismatches between connected ports', () => {
    const definition = base();
    definition.processes.split.inputs!.reads.type = 'fasta';
    definition.processes.embed.inputs!.shard.type = 'frames';
    definition.processes.merge.inputs!.results.type = 'scores[]';
    assert.deepEqual(problemsOf(definition), [
      'process "split" input "reads" (from inputs.reads): type mismatch, port expects fasta but the channel carries file',
      'process "embed" input "shard" (from split.shards): scatter needs a list of frames (frames[]) but the channel carries shard[]',
      'process "merge" input "results" (from embed.result): type mismatch, port expects scores[] but gathering gives result[]',
    ]);
  });

  it('requires gather (or scatter) to consume a scattered process, and gather only after one', () => {
    const definition = base();
    definition.processes.merge.inputs!.results.mode = 'one';
    definition.processes.split.inputs!.reads.mode = 'gather';
    assert.deepEqual(problemsOf(definition), [
      'process "split" input "reads" (from inputs.reads): gather needs a scattered process upstream',
      'process "merge" input "results" (from embed.result): upstream is scattered; use mode "gather" (type result[]) or "scatter"',
    ]);
  });

  it('rejects a process scattering over two inputs', () => {
    const definition = base();
    definition.processes.embed.inputs!.again = { from: 'split.shards', type: 'shard', mode: 'scatter' };
    assert.deepEqual(problemsOf(definition), ['process "embed": scatters over "shard" and "again"; at most one input may scatter']);
  });

  it('rejects cycles, naming the processes on the cycle', () => {
    const definition = base();
    definition.processes.split.inputs!.extra = { from: 'merge.table', type: 'file' };
    const [problem] = problemsOf(definition);
    assert.match(problem, /^cycle between processes: /);
    for (const name of ['split', 'embed', 'merge']) assert.ok(problem.includes(name), problem);
  });

  it('rejects malformed shapes with the path of the field', () => {
    const definition = base() as unknown as { processes: Record<string, Record<string, unknown>> };
    definition.processes.embed.resource = 'tpu';
    definition.processes.embed.timeouts = { heartbeat: 'soon' };
    const problems = problemsOf(definition as unknown as PipelineDefinition);
    assert.ok(problems.some((p) => p.startsWith('processes.embed.resource:')), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('processes.embed.timeouts.heartbeat:') && p.includes('"soon" is not a duration')), problems.join('\n'));
  });
});

describe('dsl: DAG rendering and the pipeline registry', () => {
  it('renders mermaid with every process, resource shape and labelled channel', () => {
    const text = renderMermaid(definePipeline(base()));
    assert.match(text, /^flowchart TD\n/);
    assert.ok(text.includes('p_embed[["embed [gpu]<br/>x.embed"]]'), text);
    assert.ok(text.includes('p_split["split [cpu]<br/>x.split"]'), text);
    assert.ok(text.includes('p_split -->|"shards → shard (scatter)"| p_embed'), text);
    assert.ok(text.includes('p_embed -->|"result → results (gather)"| p_merge'), text);
    assert.ok(text.includes('in_reads -->|"reads"| p_split'), text);
    assert.ok(text.includes('p_merge -->|"table"| out_table'), text);
  });

  it('renders dot with one node per input, process and output and one edge per channel', () => {
    const dag = definePipeline(base());
    const text = renderDot(dag);
    assert.match(text, /^digraph "wiring" \{/);
    assert.equal((text.match(/ -> /g) ?? []).length, 4);
    assert.equal((text.match(/\[label=/g) ?? []).length, 1 + 3 + 1 + 4);
    assert.ok(text.includes('p_embed -> p_merge [label="result → results (gather)"];'), text);
  });

  it('has an implementation registered for every process of every registered pipeline', () => {
    const registry = new ActivityRegistry(allImplementations());
    for (const dag of Object.values(pipelines)) {
      for (const process of dag.processes) assert.equal(registry.get(process.implementation).name, process.implementation, `${dag.name}.${process.name}`);
    }
    const broken = definePipeline(base());
    assert.throws(() => registry.get(broken.processes[0].implementation), /no implementation registered as "x\.split"/);
  });

  it('registers the selftest pipeline', () => {
    assert.equal(pipelines.selftest, selftest);
    assert.deepEqual(selftest.processes.map((p) => `${p.name}:${p.resource}`), ['generate:cpu', 'digest:gpu', 'measure:cpu', 'combine:cpu']);
  });
});
