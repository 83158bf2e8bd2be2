// The one generic workflow: runs any validated Dag. Each process waits for the processes it
// reads from, so independent processes run concurrently; a scatter fans out one step per item
// (gpu items through the device pool, cpu items inline or in child batch workflows); a gather
// sees the scattered process's outputs as lists, in item order.
import { ApplicationFailure, setHandler, workflowInfo } from '@temporalio/workflow';
import { JsonValue, ProcessSpec, scatterPort } from '../dsl/types';
import { Outputs, gathered, pipelineOutputs, processInputs, upstreamOf } from './channels';
import { CpuSteps } from './cpu-steps';
import { DevicePool } from './device-pool';
import {
  InterpreterOptions,
  RunPipelineInput,
  RunPipelineResult,
  StepResult,
  batchProgressSignal,
  defaultInterpreterOptions,
  deviceJoinedSignal,
  deviceLeftSignal,
  progressQuery,
  stepHeartbeatSignal,
} from './messages';
import { ProgressTracker } from './progress';
import { RunFacts } from './run-facts';
import { TaskContext, stepTask } from './tasks';

export async function runPipeline(input: RunPipelineInput): Promise<RunPipelineResult> {
  const { dag } = input;
  const options: InterpreterOptions = { ...defaultInterpreterOptions, ...input.options };
  const context: TaskContext = {
    runWorkflowId: workflowInfo().workflowId,
    workDir: input.workDir,
    taskQueuePrefix: input.taskQueuePrefix,
    progressIntervalMs: options.progressIntervalMs,
  };
  const progress = new ProgressTracker(dag);
  const run = new RunFacts(dag, progress, input.searchAttributes ?? false);
  const pool = new DevicePool(input.taskQueuePrefix, options.gpuSlotsPerDevice, options.stalledCooldownMs, progress, () => run.record('running'));
  const cpu = new CpuSteps(context, options, progress);

  setHandler(progressQuery, () => progress.report);
  setHandler(deviceJoinedSignal, ({ device, session }) => pool.join(device, session));
  setHandler(deviceLeftSignal, ({ device }) => pool.leave(device));
  setHandler(stepHeartbeatSignal, (beat) => progress.heartbeat(beat));
  setHandler(batchProgressSignal, (report) => cpu.batchReported(report));
  for (const device of input.devices) pool.join(device);
  run.record('running');

  const missing = Object.keys(dag.inputs).filter((name) => !(name in input.inputs));
  if (missing.length > 0) {
    throw fail(progress, run, `pipeline "${dag.name}" started without input(s): ${missing.join(', ')}`);
  }

  const results = new Map<string, Promise<Outputs>>();

  async function runProcess(spec: ProcessSpec): Promise<Outputs> {
    const upstream = new Map<string, Outputs>();
    for (const source of upstreamOf(spec)) upstream.set(source, await results.get(source)!);
    const inputs = processInputs(spec, input.inputs, upstream);
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
    return gathered(spec, await runScatter(spec, scattered, items, common));
  }

  // Not async, for the reason given in cpu-steps.ts.
  function runSingle(spec: ProcessSpec, inputs: Outputs): Promise<StepResult> {
    const task = stepTask(context, spec, inputs, null);
    return spec.resource === 'gpu' ? pool.submit(spec, task, 1) : cpu.single(spec, task);
  }

  async function runScatter(spec: ProcessSpec, port: string, items: JsonValue[], common: Outputs): Promise<Outputs[]> {
    if (spec.resource === 'gpu') {
      run.gpuStarted();
      const results = await Promise.all(items.map((item, index) => pool.submit(spec, stepTask(context, spec, { ...common, [port]: item }, index), itemUnits(item))));
      return results.map((result) => result.outputs);
    }
    if (items.length <= options.scatterBatchSize) {
      const results = await cpu.inline(spec, port, items, common);
      return results.map((result) => result.outputs);
    }
    return cpu.inBatches(spec, port, items, common);
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

function fail(progress: ProgressTracker, run: RunFacts, message: string): ApplicationFailure {
  progress.failed(message);
  run.record('failed');
  return ApplicationFailure.nonRetryable(message, 'PipelineFailed');
}
