// The one generic workflow: runs any validated Dag. Each process waits for the processes it
// reads from, so independent processes run concurrently; a scatter fans out one step per item
// (gpu items through the device pool, cpu items inline or in child batch workflows); a gather
// sees the scattered process's outputs as lists, in item order.
import { ApplicationFailure, executeChild, setHandler, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { Dag, JsonValue, PIPELINE_INPUTS, ProcessSpec, scatterPort, splitChannel } from '../dsl/types';
import { cpuQueue } from '../queues';
import { RUN_SEARCH_ATTRIBUTES } from '../search-attributes';
import { DevicePool } from './device-pool';
import {
  EngineOptions,
  RunPipelineInput,
  RunPipelineResult,
  StepResult,
  batchProgressSignal,
  defaultEngineOptions,
  deviceJoinedSignal,
  deviceLeftSignal,
  progressQuery,
  stepHeartbeatSignal,
} from './messages';
import { mapWithLimit } from './concurrency';
import { ProgressTracker, stepOutcome } from './progress';
import { ScatterBatchInput, scatterBatch } from './scatter-batch';
import { TaskContext, cpuActivities, stepTask } from './tasks';

type Outputs = Record<string, JsonValue>;

export async function runPipeline(input: RunPipelineInput): Promise<RunPipelineResult> {
  const { dag } = input;
  const options: EngineOptions = { ...defaultEngineOptions, ...input.options };
  const context: TaskContext = {
    runWorkflowId: workflowInfo().workflowId,
    workDir: input.workDir,
    taskQueuePrefix: input.taskQueuePrefix,
    progressIntervalMs: options.progressIntervalMs,
  };
  const progress = new ProgressTracker(dag);
  const run = new RunFacts(dag, progress, input.searchAttributes ?? false);
  const pool = new DevicePool(input.taskQueuePrefix, options.gpuSlotsPerDevice, options.stalledCooldownMs, progress, () => run.record('running'));
  const reportedByBatch = new Map<string, number>();

  setHandler(progressQuery, () => progress.report);
  setHandler(deviceJoinedSignal, ({ device, session }) => pool.join(device, session));
  setHandler(deviceLeftSignal, ({ device }) => pool.leave(device));
  setHandler(stepHeartbeatSignal, (beat) => progress.heartbeat(beat));
  setHandler(batchProgressSignal, ({ process, batch, done, cached }) => {
    const key = `${process}/${batch}`;
    reportedByBatch.set(key, (reportedByBatch.get(key) ?? 0) + done + cached);
    progress.finished(process, 'done', done);
    progress.finished(process, 'cached', cached);
  });
  for (const device of input.devices) pool.join(device);
  run.record('running');

  const missing = Object.keys(dag.inputs).filter((name) => !(name in input.inputs));
  if (missing.length > 0) {
    throw fail(progress, run, `pipeline "${dag.name}" started without input(s): ${missing.join(', ')}`);
  }

  const results = new Map<string, Promise<Outputs>>();

  async function runProcess(spec: ProcessSpec): Promise<Outputs> {
    const upstream = new Map<string, Outputs>();
    for (const port of Object.values(spec.inputs)) {
      const { source } = splitChannel(port.from);
      if (source !== PIPELINE_INPUTS && !upstream.has(source)) upstream.set(source, await results.get(source)!);
    }
    const inputs: Outputs = {};
    for (const [name, port] of Object.entries(spec.inputs)) {
      const { source, port: channelPort } = splitChannel(port.from);
      inputs[name] = source === PIPELINE_INPUTS ? input.inputs[channelPort] : upstream.get(source)![channelPort];
    }
    const scattered = scatterPort(spec);
    if (scattered === null) {
      progress.planned(spec.name, 1);
      const result = await runSingle(spec, inputs);
      return result.outputs;
    }
    const items = inputs[scattered];
    if (!Array.isArray(items)) {
      throw ApplicationFailure.nonRetryable(`process "${spec.name}" scatters over "${scattered}", which is not a list`);
    }
    const { [scattered]: _, ...common } = inputs;
    progress.planned(spec.name, items.length, spec.resource === 'gpu' ? items.reduce<number>((sum, item) => sum + itemUnits(item), 0) : null);
    const perItem = await runScatter(spec, scattered, items, common);
    // Consumers see each output port as the list of the items' values, in item order.
    const collected: Outputs = {};
    for (const port of Object.keys(spec.outputs)) collected[port] = perItem.map((outputs) => outputs[port]);
    return collected;
  }

  // Not async: an async wrapper would hand a cpu step's result to runProcess a microtask later,
  // which can reorder the commands of steps finishing together (recorded histories must replay).
  function runSingle(spec: ProcessSpec, inputs: Outputs): Promise<StepResult> {
    const task = stepTask(context, spec, inputs, null);
    if (spec.resource === 'gpu') return pool.submit(spec, task, 1);
    return progress.track(spec.name, 1, () => cpuActivities(input.taskQueuePrefix, spec).runStep(task), stepOutcome);
  }

  async function runScatter(spec: ProcessSpec, port: string, items: JsonValue[], common: Outputs): Promise<Outputs[]> {
    if (spec.resource === 'gpu') {
      run.gpuStarted();
      const results = await Promise.all(items.map((item, index) => pool.submit(spec, stepTask(context, spec, { ...common, [port]: item }, index), itemUnits(item))));
      return results.map((result) => result.outputs);
    }
    if (items.length <= options.scatterBatchSize) {
      const activities = cpuActivities(input.taskQueuePrefix, spec);
      const results = await mapWithLimit(items, options.scatterConcurrency, (item, index) =>
        progress.track(spec.name, 1, () => activities.runStep(stepTask(context, spec, { ...common, [port]: item }, index)), stepOutcome),
      );
      return results.map((result) => result.outputs);
    }
    return runBatches(spec, port, items, common);
  }

  async function runBatches(spec: ProcessSpec, port: string, items: JsonValue[], common: Outputs): Promise<Outputs[]> {
    const batches: ScatterBatchInput[] = [];
    for (let first = 0; first < items.length; first += options.scatterBatchSize) {
      batches.push({
        context,
        spec,
        batch: batches.length,
        firstItem: first,
        scatterPort: port,
        items: items.slice(first, first + options.scatterBatchSize),
        common,
        concurrency: options.scatterConcurrency,
      });
    }
    const results = await mapWithLimit(batches, options.maxConcurrentBatches, (batch) =>
      progress.track(
        spec.name,
        batch.items.length,
        () =>
          executeChild(scatterBatch, {
            workflowId: `${context.runWorkflowId}/${spec.name}/batch-${batch.batch}`,
            taskQueue: cpuQueue(input.taskQueuePrefix),
            args: [batch],
          }),
        (result) => ({ done: result.unreportedDone, cached: result.unreportedCached }),
        () => reportedByBatch.get(`${spec.name}/${batch.batch}`) ?? 0,
      ),
    );
    return results.flatMap((result) => result.outputs);
  }

  for (const spec of dag.processes) results.set(spec.name, runProcess(spec));
  let finished: Map<string, Outputs>;
  try {
    const values = await Promise.all(dag.processes.map((spec) => results.get(spec.name)!));
    finished = new Map(dag.processes.map((spec, index) => [spec.name, values[index]]));
  } catch (error) {
    throw fail(progress, run, `pipeline "${dag.name}" failed: ${failureMessage(error)}`);
  }
  const outputs = pipelineOutputs(dag, finished);
  progress.completed(outputs);
  run.record('completed');
  return { outputs, progress: progress.report };
}

/** The work in a scattered item: a file reference's rows (frames of a shard), else 1. */
function itemUnits(item: JsonValue): number {
  const rows = item !== null && typeof item === 'object' && !Array.isArray(item) ? item.rows : undefined;
  return typeof rows === 'number' ? rows : 1;
}

function pipelineOutputs(dag: Dag, finished: Map<string, Outputs>): Outputs {
  const outputs: Outputs = {};
  for (const [name, channel] of Object.entries(dag.outputs)) {
    const { source, port } = splitChannel(channel);
    outputs[name] = finished.get(source)![port];
  }
  return outputs;
}

function failureMessage(error: unknown): string {
  // Walk the cause chain: Temporal wraps the implementation's own message in Activity/Child failures.
  const messages: string[] = [];
  let current: unknown = error;
  while (current instanceof Error) {
    if (current.message && !messages.includes(current.message)) messages.push(current.message);
    current = (current as Error & { cause?: unknown }).cause;
  }
  return messages.join(': ') || String(error);
}

/**
 * What the run shows without a query (so the Web UI's list, `temporal workflow list` and the CLI
 * can read it even with no worker up): its pipeline, state and frames (the gpu steps' units) in
 * the memo, and, where the server has them, in the search attributes. Recorded at the start, at
 * every gpu task's end and at the end.
 */
class RunFacts {
  private gpuStartedAt: number | null = null;

  constructor(
    private readonly dag: Dag,
    private readonly progress: ProgressTracker,
    private readonly searchAttributes: boolean,
  ) {}

  gpuStarted(): void {
    this.gpuStartedAt ??= Date.now();
  }

  record(state: 'running' | 'completed' | 'failed'): void {
    const gpuSteps = this.dag.processes.filter((p) => p.resource === 'gpu').map((p) => this.progress.step(p.name));
    const framesDone = gpuSteps.reduce((sum, s) => sum + s.unitsDone, 0);
    const totals = gpuSteps.map((s) => s.unitsTotal);
    const framesTotal = totals.length > 0 && totals.every((t) => t !== null) ? totals.reduce<number>((sum, t) => sum + t!, 0) : null;
    const seconds = this.gpuStartedAt === null ? 0 : (Date.now() - this.gpuStartedAt) / 1000;
    const framesPerSecond = seconds > 0 ? Math.round((10 * framesDone) / seconds) / 10 : null;
    upsertMemo({ virnucpro: { pipeline: this.dag.name, version: this.dag.version, state, framesDone, framesTotal, framesPerSecond } });
    if (!this.searchAttributes) return;
    const keys = RUN_SEARCH_ATTRIBUTES;
    upsertSearchAttributes([
      { key: keys.state, value: state },
      { key: keys.framesDone, value: framesDone },
      ...(framesTotal === null ? [] : [{ key: keys.framesTotal, value: framesTotal }]),
    ]);
  }
}

function fail(progress: ProgressTracker, run: RunFacts, message: string): ApplicationFailure {
  progress.failed(message);
  run.record('failed');
  return ApplicationFailure.nonRetryable(message, 'PipelineFailed');
}
