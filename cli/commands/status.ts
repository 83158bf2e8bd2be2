// `virnucpro status [RUN]`: one run in detail (steps, devices, outputs), or every running run in
// one line each. Live numbers come from the workflow's `progress` query, which needs a worker to
// answer; a completed run's final report comes from its result instead.
import type { WorkflowHandle } from '@temporalio/client';
import { z } from 'zod';
import { commonShape, parseCommand, type CommandSpec } from '../args';
import { runUiLink } from '../config';
import { deviceSummary, progressLine, totals } from '../progress';
import { findRun, runMemo } from '../runs';
import { openSession } from '../session';
import { progressQuery, type ProgressReport, type RunPipelineResult } from '../../workflows/engine/messages';

const schema = z.object({ _: z.tuple([z.string().min(1)]).or(z.tuple([])), json: z.boolean().default(false), ...commonShape });

const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro status',
  summary: 'Show a run in detail, or every running run when no RUN is given.',
  positionals: [{ name: 'RUN', help: 'run id as shown by `virnucpro list`', optional: true }],
  options: [{ long: 'json', help: 'print the progress report as JSON' }],
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
        const report = await queryProgress(session.client.workflow.getHandle(execution.workflowId, execution.runId));
        out(`${execution.workflowId}  ${report ? progressLine(report, undefined, 16) : 'no worker is answering (start one: virnucpro worker)'}`);
      }
      if (!any) out('no runs in progress (virnucpro list shows finished ones)');
      return 0;
    }
    const { handle, description } = await findRun(session.client, options._[0]);
    const status = description.status.name;
    const report = status === 'COMPLETED' ? ((await handle.result()) as RunPipelineResult).progress : await queryProgress(handle);
    if (options.json) {
      out(JSON.stringify({ run: description.workflowId, status, progress: report ?? null }, null, 2));
      return 0;
    }
    const memo = runMemo(description.memo);
    out(`run:       ${description.workflowId} (${status})`);
    if (memo.pipeline) out(`pipeline:  ${memo.pipeline}`);
    if (memo.runDir) out(`directory: ${memo.runDir}`);
    out(`started:   ${description.startTime.toISOString()}${description.closeTime ? `, closed ${description.closeTime.toISOString()}` : ''}`);
    const link = runUiLink(session.settings, description.workflowId, description.runId);
    if (link) out(`web UI:    ${link}`);
    if (!report) {
      out(status === 'RUNNING' ? 'progress:  no worker is answering (start one: virnucpro worker)' : `progress:  not available for a ${status.toLowerCase()} run; see virnucpro logs ${description.workflowId}`);
      return 0;
    }
    const t = totals(report);
    out(`tasks:     ${t.tasksDone}/${t.tasksTotal}${t.totalKnown ? '' : '+'} done (${t.tasksCached} cached), ${t.tasksRunning} running, ${t.tasksFailed} failed`);
    out('steps:');
    stepTable(report).forEach(out);
    const devices = Object.entries(report.devices);
    if (devices.length) {
      out('devices:');
      for (const [id, device] of devices) out(`  ${id}: ${deviceSummary(id, device)}, ${device.inFlight} in flight`);
    }
    if (report.outputs) out(`outputs:   ${JSON.stringify(report.outputs)}`);
    if (report.error) out(`error:     ${report.error}`);
    return status === 'FAILED' ? 1 : 0;
  } finally {
    await session.close();
  }
}
