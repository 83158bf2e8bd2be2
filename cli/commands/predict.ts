// `virnucpro predict INPUT`: the VirNucPro prediction as a durable run. Checks everything it can
// before starting (input file, weights, output folder: exit 2 with the reason), starts or attaches
// to the run of the virnucpro pipeline, serves it with local workers (the CPU queue and one queue
// per selected device), shows progress, then writes the run report and prints where results are.
// Exit status: 0 success, 1 failure, 2 bad input (options, input file content, weights, output folder).
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type winston from 'winston';
import { parseCommand, UsageError } from '../args';
import { loadSettings, runUiLink } from '../config';
import { discoverDevices, gpusBusy, type DeviceDiscovery } from '../devices';
import { localDeviceIds, logPreloads, preloadDevices, spawnRuntimes, startLocalWorkers, type LocalWorkers, type Preloads } from '../local-workers';
import { shutdownRuntimes } from '../../activities/gpu/resident-runtime';
import { addRunLogFile } from '../logging';
import { follow } from '../progress';
import { hasRunSearchAttributes, runIdFor, runSearchAttributes, startOrAttach } from '../runs';
import { openSession } from '../session';
import { outputsSummary } from '../../activities/outputs/implementation';
import { syntheticBanner } from '../../activities/outputs/prediction-outputs';
import { deviceFigures, runWarnings, writeRunReport, type RunReport } from '../../activities/outputs/run-report';
import { deviceUse } from '../../activities/outputs/device-use';
import { readTrace } from '../../activities/outputs/trace';
import { OutputWriteError } from '../../activities/outputs/text-file-writer';
import { prepareStats } from '../../activities/prepare/prepare-reads';
import { fingerprintReads } from '../../activities/prepare/implementation';
import { virnucproPipeline, type VirnucproSettings } from '../../workflows/pipelines/virnucpro';
import { cpuQueue, gpuQueue } from '../../workflows/queues';
import type { RunPipelineInput, RunPipelineResult } from '../../workflows/interpreter/messages';
import { defaultOutputDir, OBSOLETE_OPTIONS, predictSpec, runtimePrecision, sampleName, type PredictOptions } from './predict-options';
import { resolveWeights, weightFingerprints } from './predict-weights';
import { findLegacyRuns } from '../../activities/legacy/sources';
import { legacyReport } from '../../activities/legacy/import-step';
import { OutputFolder } from './predict-output-folder';
import { failureTypes, INPUT_FAILURE_TYPES } from './run-failures';
import { queueIsServed } from './queue-pollers';
import { stepTimings, type StepTiming } from './step-timings';

/** The input must be a readable, non-empty file; everything about its content is checked by prepare. */
function checkInputFile(input: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(input);
  } catch {
    throw new UsageError(`INPUT ${input}: no such file`);
  }
  if (stat.isDirectory()) throw new UsageError(`INPUT ${input}: is a folder, expected a FASTA or FASTQ file`);
  if (stat.size === 0) throw new UsageError(`INPUT ${input}: the file is empty`);
  try {
    fs.accessSync(input, fs.constants.R_OK);
    fs.closeSync(fs.openSync(input, 'r'));
  } catch (error) {
    throw new UsageError(`INPUT ${input}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/** --device / --gpus as the worker's device list (`cpu`, `0,1`, or discover). */
function selectDevices(options: PredictOptions): DeviceDiscovery {
  if (options.gpus) return discoverDevices(options.gpus);
  const device = options.device;
  if (device === 'cpu') return discoverDevices('cpu');
  const index = /^(?:cuda:)?(\d+)$/.exec(device)?.[1];
  if (index !== undefined) return discoverDevices(index);
  const found = discoverDevices(undefined);
  if (device === 'cuda' && found.devices.every((d) => d.kind === 'cpu')) throw new UsageError(`--device cuda: no CUDA device found (${found.source}); use --device cpu`);
  return found;
}

function announceObsolete(options: PredictOptions, logger: winston.Logger): void {
  for (const option of OBSOLETE_OPTIONS) {
    const key = option.long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof PredictOptions;
    if (options[key] !== undefined) logger.warn(`--${option.long} is accepted for compatibility and ignored: ${option.why}`);
  }
}

function shout(text: string): void {
  const bar = '!'.repeat(Math.min(100, text.length + 4));
  process.stderr.write(`${bar}\n! ${text}\n${bar}\n`);
}

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(predictSpec, argv);
  if (!options) return 0;
  const input = path.resolve(options._[0]);
  checkInputFile(input);
  const synthetic = options.syntheticWeights ?? null;
  const outDir = path.resolve(options.outputDir ?? defaultOutputDir(input));
  // --resume also picks up what the original VirNucPro or the multi-GPU fork left for this
  // input; then the embedding models are needed only for what those runs did not compute.
  const legacy = options.resume && !options.force ? findLegacyRuns(input, outDir) : [];
  const weights = resolveWeights({ ...options, synthetic: options.syntheticWeights, embeddersOptional: legacy.length > 0 });
  const discovery = selectDevices(options);
  const cpuOnly = discovery.devices.every((d) => d.kind === 'cpu');
  const settings: VirnucproSettings = {
    expectedLength: options.expectedLength ?? (options.modelType === '300' ? 300 : 500),
    shardFrames: options.shardFrames ?? null,
    model: { ...weights, synthetic, precision: runtimePrecision(cpuOnly, options.precision), token_budget: options.tokenBudget ?? null },
    weightFiles: weightFingerprints(weights),
    embeddings: options.embeddings,
    outDir,
    legacy,
  };
  const dag = virnucproPipeline(settings);
  const reads = fingerprintReads(input);
  const identity = { dag: [dag.name, dag.version], input: reads, settings };
  const workflowId = runIdFor(dag.name, identity);
  const folder = new OutputFolder(outDir, options.workDir ? path.resolve(options.workDir) : undefined);
  folder.claim(workflowId, { resume: options.resume, force: options.force });

  // The device runtimes start (Python, PyTorch, CUDA) while the Temporal server does, and load
  // their models at once where nothing else computes on these GPUs. Otherwise the GPUs may be
  // another worker's on this host, which only the server can tell: the load waits for it (below).
  // (With earlier runs' embeddings the import step says what is left; a device loads when a shard comes.)
  let preloads: Preloads | null = null;
  if (options.workers) {
    const loadEarly = legacy.length === 0 && (cpuOnly || gpusBusy() === false);
    const local = loadSettings(options.config);
    spawnRuntimes(local, discovery);
    if (loadEarly) preloads = preloadDevices(local, discovery, settings.model);
  }
  const loadsBegan = preloads ? 'began with predict, before the Temporal server was up' : 'began once the server said no other worker serves these devices';
  const session = await openSession(options).catch(async (error: unknown) => {
    await shutdownRuntimes();
    throw error;
  });
  const { logger, client } = session;
  let workers: LocalWorkers | undefined;
  try {
    addRunLogFile(logger, folder.workRoot);
    announceObsolete(options, logger);
    for (const run of legacy) logger.info(`found files of an earlier ${run.tool} run: ${run.prefix}_* (${run.files.length} files); importing what passes the checks`);
    if (synthetic) shout(syntheticBanner(synthetic).replace(/^# /, ''));
    const queue = cpuQueue(session.settings.taskQueuePrefix);
    // Workers already serving this host's devices (`virnucpro worker` here) own them: a second
    // runtime on the same GPUs would only compete. Workers on other hosts just add devices.
    const ownQueues = localDeviceIds(discovery).map((id) => gpuQueue(session.settings.taskQueuePrefix, id));
    const served =
      options.workers && (await Promise.all(ownQueues.map((q) => queueIsServed(client, session.settings.namespace, q, 'activity').catch(() => false)))).every(Boolean);
    if (served) logger.info(`a virnucpro worker already serves this host's devices (${ownQueues.join(', ')}); using it`);
    if (options.workers && !served) {
      // Models load (and compile) on every device while the workers start and the reads are
      // prepared, unless this run already finished (an early load then only cost a little GPU time).
      if (!preloads && legacy.length === 0) {
        const finished = await client.workflow.getHandle(workflowId).describe().then((d) => d.status.name === 'COMPLETED', () => false);
        if (!finished) preloads = preloadDevices(session.settings, discovery, settings.model);
      }
      if (preloads) logPreloads(preloads, logger, loadsBegan);
      workers = await startLocalWorkers(session.settings, logger, discovery);
    } else {
      await shutdownRuntimes(); // the devices are another worker's
    }
    const searchable = await hasRunSearchAttributes(client, session.settings.namespace);
    if (!searchable) logger.verbose('the Temporal server has no virnucpro search attributes; the Web UI lists runs without them (cli/README.md, "Search attributes" under "A cluster", says how to add them)');
    const runInput: RunPipelineInput = {
      dag,
      inputs: { reads },
      workDir: folder.workDir,
      taskQueuePrefix: session.settings.taskQueuePrefix,
      devices: workers?.devices ?? [],
      searchAttributes: searchable,
    };
    const sample = sampleName(input);
    const request = {
      pipeline: dag.name,
      identity,
      workflowType: 'runPipeline',
      args: [runInput],
      taskQueue: queue,
      runDir: outDir,
      force: options.force,
      memo: { input, sample },
      searchAttributes: searchable ? runSearchAttributes(sample, input) : undefined,
    };
    let started = await startOrAttach(client, request);
    const gone = started.completed ? await missingDeliverable(started.handle) : null;
    if (gone) {
      // The same command again after the results were deleted or edited: make them again.
      logger.warn(`the completed run's results are not all there (${gone}); running it again`);
      started = await startOrAttach(client, { ...request, force: true });
    }
    logger.info(`${started.attached ? 'attached to' : 'started'} run ${started.workflowId}`, { run_id: started.runId });
    const link = runUiLink(session.settings, started.workflowId, started.runId) ?? null;
    if (link) logger.info(`web UI: ${link}`);
    // A completed run needs no devices (and takes no signals)
    const completed = started.completed;
    if (workers && !completed) await workers.offerTo(started.handle);

    let result: RunPipelineResult;
    try {
      result = await follow<RunPipelineResult>(started.handle, logger, { enabled: options.progress && !options.quiet, lineIntervalS: 10 });
    } catch (error) {
      if (!(error instanceof WorkflowFailedError)) throw error;
      return reportFailure(error, started.handle, logger);
    }
    const summary = outputsSummary.parse(result.outputs.summary);
    const stats = prepareStats.parse(result.outputs.stats);
    const report = await buildReport(started.handle, { workflowId: started.workflowId, runId: started.runId, link, input, outDir, settings, synthetic, stats, summary, result });
    const reportFiles = await writeRunReport(report).catch((error: NodeJS.ErrnoException) => {
      // The results are written; a full disk for the report is still the user's to fix (exit 2).
      if (error.code === 'ENOSPC' || error.code === 'EDQUOT') throw new UsageError(new OutputWriteError(path.join(outDir, 'run_report.*'), error.code, error).message);
      throw error;
    });
    if (!options.keepIntermediate && !options.embeddings) folder.removeIntermediates();

    for (const warning of report.warnings) logger.warn(warning);
    const lines = [
      `virnucpro predict: ${summary.records} records, ${summary.frames} frames scored; records called virus: ${summary.calls.virus}, others: ${summary.calls.others}, no frames: ${summary.calls.no_frames}`,
      ...(report.imported
        ? [`  from earlier runs' files: ${report.imported.imported.esm2} ESM-2 and ${report.imported.imported.dnabert} DNABERT-S embeddings of ${report.imported.frames} frames (run_report.md lists the files)`]
        : []),
      ...summary.files.map((f) => `  ${f.file}`),
      ...reportFiles.map((f) => `  ${f}`),
    ];
    if (options.embeddings) lines.push(`  embeddings (dnabert, esm2 columns): ${path.join(folder.workDir, 'embed')}/*/results-*.arrow`);
    if (link) lines.push(`  Web UI: ${link}`);
    process.stdout.write(lines.join('\n') + '\n');
    if (synthetic) shout(`these results come from SYNTHETIC (${synthetic}) weights: not biology`);
    return 0;
  } finally {
    await workers?.shutdown();
    await shutdownRuntimes(); // started early, before it was known whether workers would run here
    await session.close();
  }
}

/** A file the completed run delivered that is no longer there as it was written, or null. */
async function missingDeliverable(handle: WorkflowHandle): Promise<string | null> {
  const result = (await handle.result()) as RunPipelineResult;
  const summary = outputsSummary.safeParse(result.outputs.summary);
  if (!summary.success) return 'its result is from another version';
  for (const file of summary.data.files) {
    const size = fs.statSync(file.file, { throwIfNoEntry: false })?.size;
    if (size === undefined) return `${file.file} is missing`;
    if (size !== file.bytes) return `${file.file} has changed`;
  }
  return null;
}

async function reportFailure(error: WorkflowFailedError, handle: WorkflowHandle, logger: winston.Logger): Promise<number> {
  const message = error.cause?.message ?? error.message;
  const types = await failureTypes(handle).catch(() => new Set<string>());
  const inputProblem = [...types].some((t) => INPUT_FAILURE_TYPES.has(t));
  logger.log('verbose', `run failed: ${message}`, { failure_types: [...types] });
  process.stderr.write(
    `virnucpro predict: ${message}\n` +
      'Completed steps are kept: fix the problem and run the same command again (it resumes), or add --force to start over.\n',
  );
  return inputProblem ? 2 : 1;
}

interface ReportFacts {
  workflowId: string;
  runId: string;
  link: string | null;
  input: string;
  outDir: string;
  settings: VirnucproSettings;
  synthetic: 'tiny' | 'full' | null;
  stats: RunReport['prepare'];
  summary: ReturnType<typeof outputsSummary.parse>;
  result: RunPipelineResult;
}

async function buildReport(handle: WorkflowHandle, f: ReportFacts): Promise<RunReport> {
  const description = await handle.describe();
  const started = description.startTime ?? null;
  const finished = description.closeTime ?? null;
  const { devices, ...results } = f.summary;
  const timings = await stepTimings(handle).catch(() => ({}) as Record<string, StepTiming>);
  const steps = Object.fromEntries(
    Object.entries(f.result.progress.steps).map(([name, s]) => [
      name,
      {
        tasks: s.total,
        done: s.done,
        cached: s.cached,
        failed: s.failed,
        wallSeconds: timings[name]?.wallSeconds ?? null,
        busySeconds: timings[name]?.busySeconds ?? null,
        startedAt: timings[name] ? new Date(timings[name].firstStart).toISOString() : null,
        finishedAt: timings[name] ? new Date(timings[name].lastEnd).toISOString() : null,
        failedAttempts: timings[name]?.failedAttempts ?? 0,
        timedOutAttempts: timings[name]?.timedOutAttempts ?? 0,
      },
    ]),
  );
  const imported = f.result.outputs.legacy === undefined ? null : legacyReport.parse(f.result.outputs.legacy);
  // Busy and idle figures from trace.tsv (the write step put it in the output folder); the
  // scheduler's stall and worker-replacement counts from the run's final progress.
  const use = deviceUse(await readTrace(f.outDir), started?.getTime() ?? null);
  const partial = { prepare: f.stats, devices: deviceFigures(devices, f.result.progress.devices, use), synthetic: f.synthetic, results, imported, notices: f.result.progress.notices.map((n) => n.message) };
  return {
    version: 1,
    workflowId: f.workflowId,
    runId: f.runId,
    webUi: f.link,
    input: f.input,
    outputDir: f.outDir,
    started: started?.toISOString() ?? null,
    finished: finished?.toISOString() ?? null,
    wallSeconds: started && finished ? (finished.getTime() - started.getTime()) / 1000 : null,
    // The earlier runs' file lists are in `imported`; here only where they were.
    settings: { ...f.settings, legacy: f.settings.legacy.map((r) => ({ tool: r.tool, prefix: r.prefix, files: r.files.length })) },
    steps,
    ...partial,
    warnings: runWarnings(partial),
  };
}
