// gpu tasks on per-device task queues (workflow code: deterministic). The decisions (which device,
// how large a group, what moves where) are the scheduler's (scheduler.ts); this adapter turns
// them into activities on the devices' queues and cancellation scopes, resolves each submitted
// task with its own result, and keeps the progress report current.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  isCancellation,
  proxyActivities,
  sleep,
} from '@temporalio/workflow';
import { scatterPort, type JsonValue, type ProcessSpec } from '../dsl/types';
import { gpuQueue } from '../queues';
import { DEVICE_STALLED, type StepActivities, type StepResult, type StepTask } from './messages';
import type { ProgressTracker } from './progress';
import { type Action, type SchedDispatch, type SchedTask, Scheduler, defaultSchedulerPolicy } from './scheduler';

interface PoolTask {
  sched: SchedTask;
  spec: ProcessSpec;
  task: StepTask;
  lastError: string | null;
  resolve(result: StepResult): void;
  reject(error: unknown): void;
}

/** How many notices the progress report keeps. */
const NOTICES_KEPT = 50;

export class DevicePool {
  private readonly scheduler: Scheduler;
  private readonly tasks = new Map<number, PoolTask>();
  private readonly scopes = new Map<number, { scope: CancellationScope; withdrawn: boolean }>();
  private readonly proxies = new Map<string, StepActivities>();
  private nextTask = 1;

  constructor(
    private readonly prefix: string,
    slots: number,
    private readonly stalledCooldownMs: number,
    private readonly progress: ProgressTracker,
    /** After every task that completes (the run records its progress). */
    private readonly onCompleted: () => void = () => undefined,
  ) {
    this.scheduler = new Scheduler({ ...defaultSchedulerPolicy, slots, stalledCooldownMs });
  }

  join(id: string, session?: string): void {
    this.apply(this.scheduler.join(id, session, Date.now()));
  }

  leave(id: string): void {
    this.apply(this.scheduler.leave(id, Date.now()));
  }

  /** One task of `spec`; `units` is its work (frames) for grouping and progress. */
  submit(spec: ProcessSpec, task: StepTask, units: number): Promise<StepResult> {
    return new Promise<StepResult>((resolve, reject) => {
      const id = this.nextTask++;
      const sched: SchedTask = { id, process: spec.name, grouped: spec.group, maximumAttempts: spec.retry.maximumAttempts, units, failures: 0, avoid: [] };
      this.tasks.set(id, { sched, spec, task, lastError: null, resolve, reject });
      this.apply(this.scheduler.submit(sched, Date.now()));
    });
  }

  private apply(actions: Action[]): void {
    for (const action of actions) {
      if (action.kind === 'dispatch') this.start(action.dispatch, action.moved);
      else this.stop(action.dispatch, action.reason === 'moved');
    }
    this.report();
  }

  private poolTasks(dispatch: SchedDispatch): PoolTask[] {
    return dispatch.tasks.map((t) => this.tasks.get(t.id)!);
  }

  private start(dispatch: SchedDispatch, moved: boolean): void {
    const tasks = this.poolTasks(dispatch);
    const spec = tasks[0].spec;
    if (!moved) this.progress.started(spec.name, tasks.length);
    const scope = new CancellationScope();
    this.scopes.set(dispatch.id, { scope, withdrawn: false });
    const step = stepOf(spec, tasks);
    scope
      .run(() => this.activities(dispatch.device, spec).runStep(step))
      .then(
        (result) => this.completed(dispatch, tasks, result),
        (error) => this.failed(dispatch, tasks, error),
      );
  }

  /** Cancel a dispatch the scheduler no longer wants on its device (its tasks live on elsewhere). */
  private stop(dispatch: SchedDispatch, moved: boolean): void {
    const running = this.scopes.get(dispatch.id);
    if (!running) return;
    running.withdrawn = true;
    running.scope.cancel();
    if (!moved) this.progress.requeued(dispatch.tasks[0].process, dispatch.tasks.length);
  }

  private completed(dispatch: SchedDispatch, tasks: PoolTask[], result: StepResult): void {
    if (this.scopes.get(dispatch.id)?.withdrawn) return;
    this.scopes.delete(dispatch.id);
    const results = perTask(result, tasks.length);
    const computed = tasks.reduce((sum, t, k) => sum + (results[k].cached ? 0 : t.sched.units), 0);
    const actions = this.scheduler.completed(dispatch, computed, Date.now());
    tasks.forEach((t, k) => {
      this.tasks.delete(t.sched.id);
      this.progress.finished(t.spec.name, results[k].cached ? 'cached' : 'done', 1, t.sched.units);
    });
    this.progress.device(dispatch.device).unitsDone += dispatch.units;
    this.onCompleted();
    tasks.forEach((t, k) => t.resolve(results[k]));
    this.apply(actions);
  }

  private failed(dispatch: SchedDispatch, tasks: PoolTask[], error: unknown): void {
    if (this.scopes.get(dispatch.id)?.withdrawn) return;
    this.scopes.delete(dispatch.id);
    if (isCancellation(error)) {
      // The run itself is being cancelled: nothing about the device, nothing to retry.
      this.apply(this.scheduler.cancelled(dispatch, Date.now()));
      for (const t of tasks) {
        this.tasks.delete(t.sched.id);
        t.reject(error);
      }
      return;
    }
    const description = describeFailure(error);
    const nonRetryable = error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.nonRetryable;
    const { actions, exhausted } = this.scheduler.failed(dispatch, { stall: isStall(error), retryable: !nonRetryable, description }, Date.now());
    for (const t of tasks) t.lastError = description;
    const spec = tasks[0].spec;
    this.progress.requeued(spec.name, tasks.length - exhausted.length);
    for (const sched of exhausted) {
      const t = this.tasks.get(sched.id)!;
      this.tasks.delete(sched.id);
      this.progress.finished(spec.name, 'failed');
      const where = t.task.item === null ? spec.name : `${spec.name}[${t.task.item}]`;
      t.reject(
        ApplicationFailure.nonRetryable(
          `gpu task ${where} failed ${sched.failures} time(s) (devices tried: ${sched.avoid.join(', ')}); last error: ${t.lastError}`,
          'GpuTaskFailed',
        ),
      );
    }
    const device = this.scheduler.devices.get(dispatch.device)!;
    if (device.state === 'stalled') sleep(this.stalledCooldownMs).then(() => this.apply(this.scheduler.tick(Date.now())));
    this.apply(actions);
  }

  /** The scheduler's view of every device, in the progress report. */
  private report(): void {
    for (const device of this.scheduler.devices.values()) {
      const report = this.progress.device(device.id);
      report.state = device.state;
      report.inFlight = device.inFlight.length;
      report.done = device.done;
      report.restarts = device.restarts;
      report.stalls = device.stalls;
      const speed = this.scheduler.speed(device);
      report.unitsPerSecond = speed === null ? null : speed * 1000;
    }
    this.progress.report.notices = this.scheduler.notices.slice(-NOTICES_KEPT);
  }

  private activities(device: string, spec: ProcessSpec): StepActivities {
    const key = `${device}\u0000${spec.name}`;
    let proxy = this.proxies.get(key);
    if (!proxy) {
      proxy = proxyActivities<StepActivities>({
        taskQueue: gpuQueue(this.prefix, device),
        startToCloseTimeout: spec.timeouts.startToCloseMs,
        heartbeatTimeout: spec.timeouts.heartbeatMs ?? undefined,
        // A queued task waits at most for its predecessor; longer means the device's worker is gone.
        scheduleToStartTimeout: spec.timeouts.startToCloseMs,
        // The scheduler re-queues failed tasks itself, preferring another device.
        retry: { maximumAttempts: 1 },
        cancellationType: ActivityCancellationType.TRY_CANCEL,
      });
      this.proxies.set(key, proxy);
    }
    return proxy;
  }
}

/** The activity input of a dispatch: its one task, or its group's items on the scattered port. */
function stepOf(spec: ProcessSpec, tasks: PoolTask[]): StepTask {
  const previousAttempts = Math.max(...tasks.map((t) => t.sched.failures));
  if (tasks.length === 1 && !spec.group) return { ...tasks[0].task, previousAttempts };
  const port = scatterPort(spec)!;
  return {
    ...tasks[0].task,
    inputs: { ...tasks[0].task.inputs, [port]: tasks.map((t) => t.task.inputs[port] as JsonValue) },
    item: null,
    group: { port, items: tasks.map((t) => t.task.item!) },
    previousAttempts,
  };
}

/** Each task's own result out of a dispatch's. */
function perTask(result: StepResult, count: number): StepResult[] {
  if (!result.items) return [result];
  if (result.items.length !== count) throw ApplicationFailure.nonRetryable(`a group of ${count} returned ${result.items.length} results`);
  return result.items.map((item) => ({ outputs: item.outputs, cached: item.cached, key: item.key, device: result.device, seconds: result.seconds }));
}

function isStall(error: unknown): boolean {
  if (!(error instanceof ActivityFailure)) return false;
  if (error.cause instanceof ApplicationFailure) return error.cause.type === DEVICE_STALLED;
  return (
    error.cause instanceof TimeoutFailure &&
    (error.cause.timeoutType === 'HEARTBEAT' || error.cause.timeoutType === 'START_TO_CLOSE' || error.cause.timeoutType === 'SCHEDULE_TO_START')
  );
}

function describeFailure(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) {
    if (error.cause instanceof TimeoutFailure) return `${error.cause.timeoutType ?? 'unknown'} timeout`;
    return error.cause.message;
  }
  return error instanceof Error ? error.message : String(error);
}
