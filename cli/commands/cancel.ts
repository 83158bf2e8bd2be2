// `virnucpro cancel RUN`: asks the run to stop; running steps are cancelled through their
// heartbeats, completed steps stay cached for a later run of the same command.
import { z } from 'zod';
import { commonShape, parseCommand, type CommandSpec } from '../args';
import { findRun } from '../runs';
import { openSession } from '../session';

const schema = z.object({ _: z.tuple([z.string().min(1)]), ...commonShape });

const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro cancel',
  summary: 'Cancel a run (completed steps stay cached: running the same command again resumes).',
  positionals: [{ name: 'RUN', help: 'run id as shown by `virnucpro list`' }],
  options: [],
  schema,
};

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(spec, argv);
  if (!options) return 0;
  const session = await openSession(options);
  try {
    const { handle, description } = await findRun(session.client, options._[0]);
    if (description.status.name !== 'RUNNING') {
      process.stdout.write(`${description.workflowId} is not running (${description.status.name})\n`);
      return 1;
    }
    await handle.cancel();
    process.stdout.write(`cancellation requested for ${description.workflowId}\n`);
    return 0;
  } finally {
    await session.close();
  }
}
