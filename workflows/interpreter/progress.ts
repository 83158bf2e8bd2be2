// The run's progress as the `progress` query reports it. Pure bookkeeping, no Temporal calls.
import type { Dag, JsonValue } from '../dsl/types';
import type { DeviceReport, ProgressReport, StepCounts, StepHeartbeat, StepResult } from './messages';

/** Tasks that finished, computed (`done`) or found in the cache (`cached`). */
export interface TaskOutcome {
  done: number;
  cached: number;
}

/** One step task's outcome. */
export function stepOutcome(result: StepResult): TaskOutcome {
  return result.cached ? { done: 0, cached: 1 } : { done: 1, cached: 0 };
}

export class ProgressTracker {
  readonly report: ProgressReport;

  constructor(dag: Dag) {
    const steps: Record<string, StepCounts> = {};
    for (const process of dag.processes) {
      steps[process.name] = { total: null, pending: 0, running: 0, done: 0, failed: 0, cached: 0, unitsTotal: null, unitsDone: 0, latestHeartbeat: null };
    }
    this.report = { pipeline: dag.name, state: 'running', steps, devices: {}, notices: [], outputs: null, error: null };
  }

  step(process: string): StepCounts {
    return this.report.steps[process];
  }

  /** The step's tasks are known: all pending. `units`: the work in them, when it is counted. */
  planned(process: string, total: number, units: number | null = null): void {
    const step = this.step(process);
    step.total = total;
    step.pending = total;
    step.unitsTotal = units;
  }

  started(process: string, count = 1): void {
    const step = this.step(process);
    step.pending -= count;
    step.running += count;
  }

  /** Started tasks go back to waiting (their device stalled or left, or they failed and retry). */
  requeued(process: string, count = 1): void {
    const step = this.step(process);
    step.running -= count;
    step.pending += count;
  }

  finished(process: string, outcome: 'done' | 'cached' | 'failed', count = 1, units = 0): void {
    const step = this.step(process);
    step.running -= count;
    step[outcome] += count;
    if (outcome !== 'failed') step.unitsDone += units;
  }

  /**
   * Counts `work` as `count` started tasks of `process` while it runs, then as the done and cached
   * tasks `outcome` finds in its result, or, if it throws, as failed: all but the `reported()`
   * ones, which were counted as they finished (a child batch reports by signal as it goes).
   */
  async track<R>(process: string, count: number, work: () => Promise<R>, outcome: (result: R) => TaskOutcome, reported: () => number = () => 0): Promise<R> {
    this.started(process, count);
    let result: R;
    try {
      result = await work();
    } catch (error) {
      this.finished(process, 'failed', count - reported());
      throw error;
    }
    const { done, cached } = outcome(result);
    this.finished(process, 'done', done);
    this.finished(process, 'cached', cached);
    return result;
  }

  device(id: string): DeviceReport {
    this.report.devices[id] ??= { state: 'active', inFlight: 0, done: 0, unitsDone: 0, unitsPerSecond: null, restarts: 0, stalls: 0, latestHeartbeat: null };
    return this.report.devices[id];
  }

  heartbeat(beat: StepHeartbeat): void {
    const step = this.report.steps[beat.process];
    if (step) step.latestHeartbeat = beat;
    if (beat.device && this.report.devices[beat.device]) this.report.devices[beat.device].latestHeartbeat = beat;
  }

  completed(outputs: Record<string, JsonValue>): void {
    this.report.state = 'completed';
    this.report.outputs = outputs;
  }

  failed(message: string): void {
    this.report.state = 'failed';
    this.report.error = message;
  }
}
