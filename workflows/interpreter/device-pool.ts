// gpu tasks on per-device task queues (workflow code: deterministic). The decisions (which device,
// how large a group, what moves where) are the scheduler's (scheduler.ts); this adapter turns
// them into activities on the devices' queues (gpu-dispatch.ts) and cancellation scopes, resolves
// each submitted task with its own result, and keeps the progress report current.
import { CancellationScope, isCancellation, sleep } from '@temporalio/workflow';
import type { ProcessSpec } from '../dsl/types';
import { reportDevices } from './device-report';
import { DeviceActivities, dispatchTask, taskResults } from './gpu-dispatch';
import { classifyFailure, exhaustedFailure } from './gpu-failures';
import type { StepResult, StepTask } from './messages';
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

export class DevicePool {
  private readonly scheduler: Scheduler;
  private readonly activities: DeviceActivities;
  private readonly tasks = new Map<number, PoolTask>();
  private readonly scopes = new Map<number, { scope: CancellationScope; withdrawn: boolean }>();
  private nextTask = 1;

  constructor(
    prefix: string,
    slots: number,
    private readonly stalledCooldownMs: number,
    private readonly progress: ProgressTracker,
    /** After every task that completes (the run records its progress). */
    private readonly onCompleted: () => void = () => undefined,
  ) {
    this.scheduler = new Scheduler({ ...defaultSchedulerPolicy, slots, stalledCooldownMs });
    this.activities = new DeviceActivities(prefix);
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
    reportDevices(this.scheduler, this.progress);
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
    const step = dispatchTask(spec, tasks);
    scope
      .run(() => this.activities.of(dispatch.device, spec).runStep(step))
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
    const results = taskResults(result, tasks.length);
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
    const failure = classifyFailure(error);
    const { actions, exhausted } = this.scheduler.failed(dispatch, failure, Date.now());
    for (const t of tasks) t.lastError = failure.description;
    const spec = tasks[0].spec;
    this.progress.requeued(spec.name, tasks.length - exhausted.length);
    for (const sched of exhausted) {
      const t = this.tasks.get(sched.id)!;
      this.tasks.delete(sched.id);
      this.progress.finished(spec.name, 'failed');
      t.reject(exhaustedFailure(t.task.item === null ? spec.name : `${spec.name}[${t.task.item}]`, sched, t.lastError));
    }
    const device = this.scheduler.devices.get(dispatch.device)!;
    if (device.state === 'stalled') sleep(this.stalledCooldownMs).then(() => this.apply(this.scheduler.tick(Date.now())));
    this.apply(actions);
  }
}
