// `virnucpro worker`: serves this host's CPU queue and one queue per local device for runs
// started anywhere, until SIGINT/SIGTERM. Every running run is told the devices are there (at
// start and then every --announce-interval seconds, which also lifts a stall mark left by a
// previous worker that died) and that they leave (on a clean stop), so its scheduler uses them
// at once and moves their unfinished tasks elsewhere on the way out.
import { z } from 'zod';
import { commonShape, parseCommand, type CommandSpec } from '../args';
import { discoverDevices } from '../devices';
import { startLocalWorkers } from '../local-workers';
import { openSession } from '../session';

const schema = z.object({
  _: z.tuple([]),
  devices: z.string().optional(),
  announceInterval: z.coerce.number().min(1).default(15),
  ...commonShape,
});

const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro worker',
  summary: "Serve this host's CPU queue and one GPU queue per local device, until interrupted.",
  options: [
    { long: 'devices', value: 'LIST', help: 'devices to serve: 0,1 | cpu | cpu:N (default: CUDA_VISIBLE_DEVICES, else nvidia-smi, else one CPU device)' },
    { long: 'announce-interval', value: 'SECONDS', help: 'how often to offer the devices to running runs (default 15)' },
  ],
  epilog: 'Point every host at the same Temporal cluster (TEMPORAL_ADDRESS or -c FILE) and run a worker on each.',
  schema,
};

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(spec, argv);
  if (!options) return 0;
  const devices = discoverDevices(options.devices);
  const session = await openSession(options, { exitOnInterrupt: false });
  const { client, logger } = session;
  const workers = await startLocalWorkers(session.settings, logger, devices);
  const announced = new Set<string>();
  const announceToRunningRuns = async () => {
    try {
      for await (const execution of client.workflow.list({ query: 'ExecutionStatus = "Running" AND WorkflowType = "runPipeline"' })) {
        await workers.announce(client.workflow.getHandle(execution.workflowId, execution.runId));
        if (!announced.has(execution.runId)) logger.info(`offered ${workers.devices.join(', ')} to run ${execution.workflowId}`);
        announced.add(execution.runId);
      }
    } catch (err) {
      logger.debug(`could not list running runs: ${(err as Error).message}`);
    }
  };
  await announceToRunningRuns();
  const timer = setInterval(() => void announceToRunningRuns(), options.announceInterval * 1000);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: leaving; unfinished tasks of this host's devices move to other devices`);
    clearInterval(timer);
    await workers.withdraw(client).catch((err: Error) => logger.warn(`could not tell runs the devices leave: ${err.message}`));
    await workers.shutdown();
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  logger.info('worker ready (Ctrl-C to stop)');
  try {
    await workers.finished;
    return stopping ? 0 : 1;
  } finally {
    clearInterval(timer);
    await session.close();
  }
}
