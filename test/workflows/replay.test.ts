// Recorded histories of real runs (test/histories/, made by test/support/record-histories.ts)
// must replay against the current workflow code: a change that is not guarded by patched()
// breaks in-flight runs, and fails here. Replay checks the commands' kinds and order; the second
// test checks their inputs too (which step, which item), which replay alone does not.
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import type { History } from '@temporalio/common/lib/proto-utils';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workflowsPath } from '../../activities/steps/workers';
import { fromHistoryFile } from '../support/histories';
import { repoRoot, workflowBundle } from '../support/temporal';

const historiesDir = join(repoRoot, 'test', 'histories');

describe('interpreter: replay of recorded histories', function () {
  this.timeout(120_000);

  const files = readdirSync(historiesDir).filter((name) => name.endsWith('.json'));
  const histories = () => files.map((name) => fromHistoryFile(JSON.parse(readFileSync(join(historiesDir, name), 'utf8'))));

  it('has recorded histories of the selftest pipeline and of child batch workflows', () => {
    assert.ok(files.some((name) => name.startsWith('selftest-')), files.join(', '));
    assert.ok(files.some((name) => name.includes('__batch-')), files.join(', '));
  });

  it('replays every recorded history deterministically', async () => {
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories())) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    assert.deepEqual(failures, []);
  });

  it('schedules every recorded activity, child workflow and timer with its recorded input', async () => {
    const issued = new Map<string, Map<string, string>>();
    const bundle = await bundleWorkflowCode({
      workflowsPath,
      workflowInterceptorModules: [require.resolve('../support/command-recorder')],
      logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: console.error },
    });
    const sinks = {
      commands: {
        issued: {
          fn: (info: { workflowId: string }, key: string, type: string, input: string) => {
            if (!issued.has(info.workflowId)) issued.set(info.workflowId, new Map());
            issued.get(info.workflowId)!.set(key, `${type} ${input}`);
          },
          callDuringReplay: true,
        },
      },
    };
    const recorded = histories();
    const failures: string[] = [];
    let checked = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, sinks }, recorded)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
      const history = recorded.find((h) => h.workflowId === result.workflowId)!.history;
      for (const [key, expected] of recordedCommands(history)) {
        checked += 1;
        const actual = issued.get(result.workflowId)?.get(key);
        if (actual !== expected) failures.push(`${result.workflowId} ${key}: recorded ${expected.slice(0, 200)}, issued ${actual?.slice(0, 200)}`);
      }
    }
    assert.ok(checked > 0);
    assert.deepEqual(failures, []);
  });
});

/** The history's scheduled activities, started children and timers, keyed as the recorder keys them. */
function recordedCommands(history: History): Array<[string, string]> {
  const input = (payloads: Array<{ data?: Uint8Array | null }> | null | undefined) =>
    JSON.stringify((payloads ?? []).map((p) => (p.data && p.data.length > 0 ? JSON.parse(Buffer.from(p.data).toString('utf8')) : null)));
  const commands: Array<[string, string]> = [];
  for (const event of history.events ?? []) {
    const activity = event.activityTaskScheduledEventAttributes;
    const child = event.startChildWorkflowExecutionInitiatedEventAttributes;
    const timer = event.timerStartedEventAttributes;
    if (activity) commands.push([`activity:${activity.activityId}`, `${activity.activityType?.name} ${input(activity.input?.payloads)}`]);
    if (child) commands.push([`child:${child.workflowId}`, `${child.workflowType?.name} ${input(child.input?.payloads)}`]);
    if (timer) {
      const ms = Number(timer.startToFireTimeout?.seconds ?? 0) * 1000 + Math.round((timer.startToFireTimeout?.nanos ?? 0) / 1e6);
      commands.push([`timer:${timer.timerId}`, `timer ${JSON.stringify(ms)}`]);
    }
  }
  return commands;
}
