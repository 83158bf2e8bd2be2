// cpu steps (workflow code): a single step, a scatter's items inline at bounded concurrency, or a
// large scatter in child batch workflows; each counted in the progress report while it runs.
import { executeChild } from '@temporalio/workflow';
import type { JsonValue, ProcessSpec } from '../dsl/types';
import { cpuQueue } from '../queues';
import type { Outputs } from './channels';
import { mapWithLimit } from './concurrency';
import type { BatchProgress, InterpreterOptions, StepResult, StepTask } from './messages';
import { ProgressTracker, stepOutcome } from './progress';
import { ScatterBatchInput, scatterBatch } from './scatter-batch';
import { TaskContext, cpuActivities, stepTask } from './tasks';

// `single` and `inline` are not async and hand back the tracked promise itself: an async wrapper
// would pass a result on a microtask later, which can reorder the commands of steps finishing
// together (recorded histories must replay).
export class CpuSteps {
  /** Items of each child batch (`<process>/<batch>`) already counted from its progress signals. */
  private readonly reportedByBatch = new Map<string, number>();

  constructor(
    private readonly context: TaskContext,
    private readonly options: InterpreterOptions,
    private readonly progress: ProgressTracker,
  ) {}

  single(spec: ProcessSpec, task: StepTask): Promise<StepResult> {
    return this.progress.track(spec.name, 1, () => cpuActivities(this.context.taskQueuePrefix, spec).runStep(task), stepOutcome);
  }

  /** A scatter in this workflow, at most `scatterConcurrency` steps at once. */
  inline(spec: ProcessSpec, port: string, items: JsonValue[], common: Outputs): Promise<StepResult[]> {
    const activities = cpuActivities(this.context.taskQueuePrefix, spec);
    return mapWithLimit(items, this.options.scatterConcurrency, (item, index) =>
      this.progress.track(spec.name, 1, () => activities.runStep(stepTask(this.context, spec, { ...common, [port]: item }, index)), stepOutcome),
    );
  }

  /** A scatter in child workflows of `scatterBatchSize` items, at most `maxConcurrentBatches` at once. */
  async inBatches(spec: ProcessSpec, port: string, items: JsonValue[], common: Outputs): Promise<Outputs[]> {
    const { context, options } = this;
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
      this.progress.track(
        spec.name,
        batch.items.length,
        () =>
          executeChild(scatterBatch, {
            workflowId: `${context.runWorkflowId}/${spec.name}/batch-${batch.batch}`,
            taskQueue: cpuQueue(context.taskQueuePrefix),
            args: [batch],
          }),
        (result) => ({ done: result.unreportedDone, cached: result.unreportedCached }),
        () => this.reportedByBatch.get(`${spec.name}/${batch.batch}`) ?? 0,
      ),
    );
    return results.flatMap((result) => result.outputs);
  }

  /** A child batch's signal: items it finished since its last one. */
  batchReported({ process, batch, done, cached }: BatchProgress): void {
    const key = `${process}/${batch}`;
    this.reportedByBatch.set(key, (this.reportedByBatch.get(key) ?? 0) + done + cached);
    this.progress.finished(process, 'done', done);
    this.progress.finished(process, 'cached', cached);
  }
}
