// `virnucpro status [RUN] [--watch]`: one run in detail (steps, a table per device with frames
// done, frames/s, GPU utilisation, memory, and the ETA), or every running run in one line each.
// Live numbers come from the workflow's `progress` query (a worker answers it) and the running
// tasks' heartbeats on the server, so it works from any host that reaches Temporal; a completed
// run's final report comes from its result instead. `--watch` redraws every few seconds until
// the run closes; with `--json` it prints one JSON object per refresh.
import type { WorkflowHandle } from '@temporalio/client';
import { z } from 'zod';
import { commonShape, parseCommand, type CommandSpec } from '../args';
import { runUiLink } from '../config';
import { liveTasks, runView, type RunView } from '../live';
import { deviceTable, formatDuration, progressLine, taskTotals } from '../progress';
import { findRun, runMemo } from '../runs';
import { openSession, type Session } from '../session';
import { progressQuery, type ProgressReport, type RunPipelineResult } from '../../workflows/interpreter/messages';

const schema = z.object({
  _: z.tuple([z.string().min(1)]).or(z.tuple([])),
  json: z.boolean().default(false),
  watch: z.boolean().default(false),
  interval: z.coerce.number().min(0.5).max(3600).default(3),
  ...commonShape,
});
type Options = z.infer<typeof schema>;

const spec: CommandSpec<Options> = {
  name: 'virnucpro status',
  summary: 'Show a run in detail (per device: frames, frames/s, GPU use, ETA), or every running run when no RUN is given.',
  positionals: [{ name: 'RUN', help: 'run id as shown by `virnucpro list`', optional: true }],
  options: [
    { long: 'watch', help: 'refresh until the run ends' },
    { long: 'interval', value: 'SECONDS', help: 'seconds between refreshes with --watch (default 3)' },
    { long: 'json', help: 'print the status as JSON (one object per refresh with --watch)' },
  ],
  schema,
};

const QUERY_TIMEOUT_MS = 5000;

/** The live report, or undefined when no worker answers in time. */
async function queryProgress(handle: WorkflowHandle): Promise<ProgressReport | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), QUERY_TIMEOUT_MS)));
  try {
    return await Promise.race([handle.query(progressQuery).catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function stepTable(report: ProgressReport): string[] {
  const header = ['STEP', 'TOTAL', 'DONE', 'CACHED', 'RUNNING', 'PENDING', 'FAILED'];
  const rows = Object.entries(report.steps).map(([name, s]) => [name, s.total === null ? '?' : String(s.total), String(s.done), String(s.cached), String(s.running), String(s.pending), String(s.failed)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((row) => '  ' + row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

interface Status {
  status: string;
  report: ProgressReport | undefined;
  view: RunView | undefined;
}

async function readStatus(handle: WorkflowHandle): Promise<Status> {
  const description = await handle.describe();
  const status = description.status.name;
  if (status === 'COMPLETED') {
    const report = ((await handle.result()) as RunPipelineResult).progress;
    return { status, report, view: runView(report, []) };
  }
  const [report, tasks] = await Promise.all([queryProgress(handle), status === 'RUNNING' ? liveTasks(handle).catch(() => []) : Promise.resolve([])]);
  return { status, report, view: report ? runView(report, tasks) : undefined };
}

async function printStatus(session: Session, runId: string, options: Options, out: (line: string) => void): Promise<string> {
  const { handle, description } = await findRun(session.client, runId);
  const { status, report, view } = await readStatus(handle);
  if (options.json) {
    out(JSON.stringify({ run: description.workflowId, status, at: new Date().toISOString(), view: view ?? null, progress: report ?? null }, null, options.watch ? undefined : 2));
    return status;
  }
  const memo = runMemo(description.memo);
  out(`run:       ${description.workflowId} (${status})`);
  if (memo.pipeline) out(`pipeline:  ${memo.pipeline}`);
  if (memo.runDir) out(`directory: ${memo.runDir}`);
  out(`started:   ${description.startTime.toISOString()}${description.closeTime ? `, closed ${description.closeTime.toISOString()}` : ''}`);
  const link = runUiLink(session.settings, description.workflowId, description.runId);
  if (link) out(`web UI:    ${link}`);
  if (!report || !view) {
    out(status === 'RUNNING' ? 'progress:  no worker is answering (start one: virnucpro worker)' : `progress:  not available for a ${status.toLowerCase()} run; see virnucpro logs ${description.workflowId}`);
    return status;
  }
  const t = taskTotals(report);
  out(`tasks:     ${t.tasksDone}/${t.tasksTotal}${t.totalKnown ? '' : '+'} done (${t.tasksCached} cached), ${t.tasksRunning} running, ${t.tasksFailed} failed`);
  if (view.framesTotal !== null) {
    const eta = view.etaSeconds === null ? '' : `, ETA ${formatDuration(view.etaSeconds)}`;
    out(`frames:    ${view.framesDone.toLocaleString('en-US')}/${view.framesTotal.toLocaleString('en-US')}, ${view.framesPerSecond.toFixed(0)} frames/s${eta}`);
  }
  out('steps:');
  stepTable(report).forEach(out);
  if (view.devices.length) {
    out('devices:');
    deviceTable(view).forEach(out);
  }
  if (report.outputs) out(`outputs:   ${JSON.stringify(report.outputs)}`);
  if (report.error) out(`error:     ${report.error}`);
  return status;
}

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(spec, argv);
  if (!options) return 0;
  const session = await openSession({ ...options, quiet: !options.verbose });
  const out = (line: string) => process.stdout.write(line + '\n');
  try {
    if (options._.length === 0) {
      let any = false;
      for await (const execution of session.client.workflow.list({ query: 'ExecutionStatus = "Running"' })) {
        any = true;
        const handle = session.client.workflow.getHandle(execution.workflowId, execution.runId);
        const report = await queryProgress(handle);
        const line = report ? progressLine(report, runView(report, await liveTasks(handle).catch(() => [])), undefined, 16) : 'no worker is answering (start one: virnucpro worker)';
        out(`${execution.workflowId}  ${line}`);
      }
      if (!any) out('no runs in progress (virnucpro list shows finished ones)');
      return 0;
    }
    const runId = options._[0];
    for (;;) {
      const lines: string[] = [];
      const status = await printStatus(session, runId, options, (line) => lines.push(line));
      const redraw = options.watch && !options.json && process.stdout.isTTY;
      if (redraw) process.stdout.write('\x1b[H\x1b[2J');
      lines.forEach(out);
      if (!options.watch || status !== 'RUNNING') return status === 'FAILED' ? 1 : 0;
      if (!options.json && !redraw) out('');
      await new Promise((resolve) => setTimeout(resolve, options.interval * 1000));
    }
  } finally {
    await session.close();
  }
}
