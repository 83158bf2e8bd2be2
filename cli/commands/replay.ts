// `virnucpro replay RUN`: runs a failed (or cancelled, terminated, timed-out) run again under the
// same run id, with the same DAG, inputs and parameters as recorded in its history. Nothing is
// reset in Temporal: the new run asks the step cache for every step, so completed steps
// are hits (their validated outputs are reused) and only failed or never-run steps compute.
import { defaultPayloadConverter } from '@temporalio/common';
import { z } from 'zod';
import { commonShape, parseCommand, UsageError, type CommandSpec } from '../args';
import { runUiLink } from '../config';
import { discoverDevices } from '../devices';
import { startLocalWorkers } from '../local-workers';
import { addRunLogFile } from '../logging';
import { follow } from '../progress';
import { findRun, runMemo } from '../runs';
import { openSession } from '../session';

const schema = z.object({
  _: z.tuple([z.string().min(1)]),
  devices: z.string().optional(),
  workers: z.boolean().default(true),
  progress: z.boolean().default(true),
  ...commonShape,
});

const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro replay',
  summary: 'Run the failed steps of a failed run again, keeping (cache hits) the completed ones.',
  positionals: [{ name: 'RUN', help: 'run id as shown by `virnucpro list`' }],
  options: [
    { long: 'devices', value: 'LIST', help: 'local devices for the workers: 0,1 | cpu | cpu:N (default: discover)' },
    { long: 'workers', help: 'run workers in this process (default; --no-workers relies on `virnucpro worker`)' },
    { long: 'progress', help: 'show progress (default; --no-progress to hide)' },
  ],
  epilog: 'The new run keeps the run id; its history starts afresh, and steps whose inputs and parameters\nmatch a completed step of the old run are taken from the cache.',
  schema,
};

const REPLAYABLE = new Set(['FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT']);

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(spec, argv);
  if (!options) return 0;
  const devices = options.workers ? discoverDevices(options.devices) : undefined;
  const session = await openSession(options);
  const { logger, client } = session;
  let workers: Awaited<ReturnType<typeof startLocalWorkers>> | undefined;
  try {
    const { description, handle } = await findRun(client, options._[0]);
    if (!REPLAYABLE.has(description.status.name)) {
      throw new UsageError(`${description.workflowId} is ${description.status.name}; only failed, cancelled, terminated or timed-out runs can be replayed`);
    }
    const started = (await handle.fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes;
    if (!started?.workflowType?.name || !started.taskQueue?.name) throw new Error(`the history of ${description.workflowId} has no start event`);
    const args = (started.input?.payloads ?? []).map((p) => defaultPayloadConverter.fromPayload(p));
    const memo = runMemo(description.memo);
    if (memo.runDir) addRunLogFile(logger, memo.runDir);
    if (devices) workers = await startLocalWorkers(session.settings, logger, devices);
    const replayed = await client.workflow.start(started.workflowType.name, {
      workflowId: description.workflowId,
      taskQueue: started.taskQueue.name,
      args,
      memo: description.memo,
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    });
    if (workers) await workers.offerTo(replayed);
    logger.info(`replaying ${description.workflowId} as run ${replayed.firstExecutionRunId} (completed steps come from the cache)`);
    const link = runUiLink(session.settings, description.workflowId, replayed.firstExecutionRunId);
    if (link) logger.info(`web UI: ${link}`);
    await follow(replayed, logger, { enabled: options.progress && !options.quiet, lineIntervalS: 10 });
    logger.info(`run ${description.workflowId} completed`);
    return 0;
  } finally {
    await workers?.shutdown();
    await session.close();
  }
}
