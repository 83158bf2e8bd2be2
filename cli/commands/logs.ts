// `virnucpro logs RUN`: the run's own log file (JSON lines in its directory, written by every
// virnucpro process that worked on it) and a summary of its Temporal history.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { commonShape, parseCommand, type CommandSpec } from '../args';
import { RUN_LOG_FILE } from '../logging';
import { findRun, runMemo, type RunMemo } from '../runs';
import { openSession } from '../session';
import { summarizeHistory } from '../history';

const schema = z.object({
  _: z.tuple([z.string().min(1)]),
  json: z.boolean().default(false),
  tail: z.coerce.number().int().min(1).optional(),
  history: z.boolean().default(true),
  ...commonShape,
});

const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro logs',
  summary: "Print a run's log and a summary of its workflow history.",
  positionals: [{ name: 'RUN', help: 'run id as shown by `virnucpro list`' }],
  options: [
    { long: 'json', help: 'print the log lines as stored (JSON lines)' },
    { long: 'tail', short: 'n', value: 'N', help: 'only the last N log lines' },
    { long: 'history', help: 'include the workflow history summary (default; --no-history to skip)' },
  ],
  schema,
};

/** The memo's log file, else `<runDir>/virnucpro.log`, else one in a folder directly below. */
function findLogFile({ runDir, logFile }: RunMemo): string | undefined {
  if (logFile) return logFile;
  if (!runDir) return undefined;
  const direct = path.join(runDir, RUN_LOG_FILE);
  if (fs.existsSync(direct)) return direct;
  const nested = fs.existsSync(runDir) ? fs.readdirSync(runDir).map((entry) => path.join(runDir, entry, RUN_LOG_FILE)) : [];
  return nested.find((file) => fs.existsSync(file)) ?? direct;
}

function readable(line: string): string {
  try {
    const { timestamp, level, message, ...meta } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.entries(meta).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
    return `${String(timestamp ?? '').replace('T', ' ').slice(0, 19)} ${String(level).padEnd(5)} ${String(message)}${extra ? ' ' + extra : ''}`;
  } catch {
    return line;
  }
}

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(spec, argv);
  if (!options) return 0;
  const session = await openSession({ ...options, quiet: !options.verbose });
  try {
    const { handle, description } = await findRun(session.client, options._[0]);
    const logFile = findLogFile(runMemo(description.memo));
    if (logFile && fs.existsSync(logFile)) {
      let lines = fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
      if (options.tail) lines = lines.slice(-options.tail);
      process.stdout.write(`== log: ${logFile} ==\n`);
      for (const line of lines) process.stdout.write((options.json ? line : readable(line)) + '\n');
    } else {
      process.stdout.write(`== log: ${logFile ? `${logFile} does not exist (yet)` : 'this run has no run directory recorded'} ==\n`);
    }
    if (options.history) {
      process.stdout.write(`== workflow history: ${description.workflowId} (run ${description.runId}), ${description.status.name} ==\n`);
      process.stdout.write(summarizeHistory(await handle.fetchHistory()).join('\n') + '\n');
    }
    return 0;
  } finally {
    await session.close();
  }
}
