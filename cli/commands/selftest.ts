// `virnucpro selftest`: runs the selftest pipeline (generate files on the CPU queue, hash
// each on a device queue, measure, combine) end to end and checks the report, exercising the
// same machinery as `predict`: Temporal, workers, device scheduling, caching, resumption.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { commonShape, parseCommand, type CommandSpec } from '../args';
import { runUiLink } from '../config';
import { discoverDevices } from '../devices';
import { localDeviceIds, startLocalWorkers, type LocalWorkers } from '../local-workers';
import { addRunLogFile } from '../logging';
import { follow } from '../progress';
import { startOrAttach } from '../runs';
import { openSession } from '../session';
import { getPipeline } from '../../workflows/pipelines';
import { cpuQueue } from '../../workflows/queues';
import type { RunPipelineInput, RunPipelineResult } from '../../workflows/interpreter/messages';

const schema = z.object({
  _: z.tuple([]),
  out: z.string().min(1).default('virnucpro-selftest'),
  files: z.coerce.number().int().min(1).max(100_000).default(24),
  lines: z.coerce.number().int().min(1).default(64),
  sleepMs: z.coerce.number().int().min(0).default(500),
  seed: z.string().default('virnucpro'),
  devices: z.string().optional(),
  workers: z.boolean().default(true),
  force: z.boolean().default(false),
  progress: z.boolean().default(true),
  ...commonShape,
});

const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro selftest',
  summary: 'Run the built-in selftest pipeline end to end and check its report.',
  options: [
    { long: 'out', short: 'o', value: 'DIR', help: 'run directory (default ./virnucpro-selftest)' },
    { long: 'files', value: 'N', help: 'number of files, i.e. device tasks (default 24)' },
    { long: 'lines', value: 'N', help: 'lines per file (default 64)' },
    { long: 'sleep-ms', value: 'MS', help: 'simulated device work per task, heartbeating (default 500)' },
    { long: 'seed', value: 'TEXT', help: 'content seed (default virnucpro)' },
    { long: 'devices', value: 'LIST', help: 'local devices for the workers: 0,1 | cpu | cpu:N (default: discover)' },
    { long: 'workers', help: 'run workers in this process (default; --no-workers relies on `virnucpro worker`)' },
    { long: 'force', help: 'start a fresh run even if the same one exists (running or completed)' },
    { long: 'progress', help: 'show progress (default; --no-progress to hide)' },
  ],
  epilog: 'Running the same command again attaches to the existing run instead of starting another.',
  schema,
};

const reportSchema = z.object({ files: z.number(), rows: z.number(), bytes: z.number(), digests: z.array(z.string()) });
const fileOutput = z.object({ path: z.string() });

/** The report must name every generated file exactly once. */
function checkReport(reportPath: string, files: number): string[] {
  const report = reportSchema.parse(JSON.parse(fs.readFileSync(reportPath, 'utf8')));
  const names = report.digests.map((line) => line.split(/\s+/)[1]);
  const problems: string[] = [];
  if (report.files !== files) problems.push(`report counts ${report.files} files, expected ${files}`);
  if (new Set(names).size !== names.length) problems.push('a file is digested twice');
  if (names.length !== files) problems.push(`${names.length} digests for ${files} files`);
  return problems;
}

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(spec, argv);
  if (!options) return 0;
  const devices = options.workers ? discoverDevices(options.devices) : undefined;
  const session = await openSession(options);
  const { logger, client, settings } = session;
  let workers: LocalWorkers | undefined;
  try {
    const runDir = path.resolve(options.out);
    addRunLogFile(logger, runDir);
    const dag = getPipeline('selftest');
    const selftestSettings = { files: options.files, lines: options.lines, rounds: 1, sleepMs: options.sleepMs, seed: options.seed };
    const input: RunPipelineInput = {
      dag,
      inputs: { settings: selftestSettings },
      workDir: path.join(runDir, 'work'),
      taskQueuePrefix: settings.taskQueuePrefix,
      devices: devices ? localDeviceIds(devices) : [],
    };
    const started = await startOrAttach(client, {
      pipeline: dag.name,
      identity: { dag: [dag.name, dag.version], settings: selftestSettings, runDir },
      workflowType: 'runPipeline',
      args: [input],
      taskQueue: cpuQueue(settings.taskQueuePrefix),
      runDir,
      force: options.force,
    });
    logger.info(`${started.attached ? 'attached to' : 'started'} run ${started.workflowId}`, { run_id: started.runId });
    const link = runUiLink(settings, started.workflowId, started.runId);
    if (link) logger.info(`web UI: ${link}`);
    if (devices && !started.completed) {
      workers = await startLocalWorkers(settings, logger, devices);
      await workers.offerTo(started.handle);
    }
    const result = await follow<RunPipelineResult>(started.handle, logger, { enabled: options.progress && !options.quiet, lineIntervalS: 10 });
    const report = fileOutput.parse(result.outputs.report).path;
    const problems = checkReport(report, options.files);
    if (problems.length) {
      logger.error(`selftest report is wrong: ${problems.join('; ')}`);
      return 1;
    }
    process.stdout.write(`selftest passed: ${options.files} files digested once each; report ${report}\n`);
    return 0;
  } finally {
    await workers?.shutdown();
    await session.close();
  }
}
