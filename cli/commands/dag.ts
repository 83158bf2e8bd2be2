// `virnucpro dag PIPELINE --format mermaid|dot`: draws a registered pipeline.
import { z } from 'zod';
import { commonShape, parseCommand, UsageError, type CommandSpec } from '../args';
import { renderDot, renderMermaid } from '../../workflows/dsl/render';
import { pipelines } from '../../workflows/pipelines';

const schema = z.object({
  _: z.tuple([z.string().min(1)]),
  format: z.enum(['mermaid', 'dot']).default('mermaid'),
  ...commonShape,
});

const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro dag',
  summary: 'Draw a pipeline as a Mermaid flowchart or a Graphviz dot graph.',
  positionals: [{ name: 'PIPELINE', help: `pipeline name (${Object.keys(pipelines).join(', ')})` }],
  options: [{ long: 'format', short: 'f', value: 'FORMAT', help: 'mermaid (default) or dot' }],
  epilog: 'Example: virnucpro dag selftest --format dot | dot -Tsvg > selftest.svg',
  schema,
};

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(spec, argv);
  if (!options) return 0;
  const dag = pipelines[options._[0]];
  if (!dag || !Object.hasOwn(pipelines, options._[0])) throw new UsageError(`unknown pipeline '${options._[0]}' (known: ${Object.keys(pipelines).join(', ')})`);
  process.stdout.write(options.format === 'dot' ? renderDot(dag) : renderMermaid(dag));
  return 0;
}
