// `virnucpro list`: the runs Temporal knows, newest first, with their sample and frames done
// (from the memo the workflow keeps current, so no worker needs to answer).
import { z } from 'zod';
import { commonShape, parseCommand, type CommandSpec } from '../args';
import { runMemo } from '../runs';
import { openSession } from '../session';

const schema = z.object({
  _: z.tuple([]),
  limit: z.coerce.number().int().min(1).default(20),
  running: z.boolean().default(false),
  ...commonShape,
});

const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro list',
  summary: 'List runs, newest first.',
  options: [
    { long: 'limit', short: 'n', value: 'N', help: 'show at most N runs (default 20)' },
    { long: 'running', help: 'only runs still in progress' },
  ],
  schema,
};

function age(date: Date | undefined): string {
  return date ? date.toISOString().replace('T', ' ').slice(0, 19) : '-';
}

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(spec, argv);
  if (!options) return 0;
  const session = await openSession(options);
  try {
    const rows: string[][] = [];
    const query = options.running ? 'ExecutionStatus = "Running"' : undefined;
    for await (const execution of session.client.workflow.list({ query, pageSize: options.limit })) {
      const memo = runMemo(execution.memo);
      const p = memo.progress;
      const frames = p?.framesTotal ? `${p.framesDone ?? 0}/${p.framesTotal}` : '-';
      rows.push([execution.workflowId, execution.status.name, memo.pipeline ?? execution.type, memo.sample ?? '-', frames, age(execution.startTime), age(execution.closeTime), memo.runDir ?? '-']);
      if (rows.length >= options.limit) break;
    }
    if (!rows.length) {
      process.stdout.write('no runs\n');
      return 0;
    }
    const header = ['RUN', 'STATUS', 'PIPELINE', 'SAMPLE', 'FRAMES', 'STARTED (UTC)', 'CLOSED (UTC)', 'DIRECTORY'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const row of [header, ...rows]) process.stdout.write(row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd() + '\n');
    return 0;
  } finally {
    await session.close();
  }
}
