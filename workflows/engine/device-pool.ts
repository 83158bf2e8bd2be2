// Dynamic assignment of gpu tasks to per-device task queues (workflow code: deterministic).
//
// Each device holds at most `slots` tasks (one running, the next already queued on its task
// queue, so the worker never waits for the workflow between tasks). A device gets new work when a
// task completes, so a slow device simply takes fewer tasks. When a device runs dry and nothing
// is waiting, it takes over work that would finish later elsewhere: a task still queued behind
// another device's running one, or a running task whose expected finish on the slow device is
// later than a fresh start here (the old attempt is cancelled, so no task completes twice).
// A task whose heartbeat stops is re-queued, preferring another device, for a bounded number of
// attempts; the stalled device rests for a cool-down.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  patched,
  proxyActivities,
  sleep,
} from '@temporalio/workflow';
import type { ProcessSpec } from '../dsl/types';
import { gpuQueue } from '../queues';
import type { StepActivities, StepResult, StepTask } from './messages';
import type { ProgressTracker } from './progress';

interface GpuTask {
  spec: ProcessSpec;
  task: StepTask;
  /** Work in the task (rows of its scattered file: frames), for progress. */
  units: number;
  /** Failed attempts so far (moves made by the pool itself do not count). */
  failures: number;
  /** Devices this task failed on: tried last. */
  avoid: string[];
  lastError: string | null;
  resolve(result: StepResult): void;
  reject(error: unknown): void;
}

type WithdrawReason = 'moved' | 'device stalled' | 'device left' | 'worker replaced';

interface Dispatch {
  task: GpuTask;
  device: Device;
  scope: CancellationScope;
  /** Workflow time the task probably began running: its predecessor's end, or its dispatch. */
  startedAt: number | null;
  withdrawn: WithdrawReason | null;
}

interface Device {
  id: string;
  /** The worker process serving it, as its announcements name it (absent from older workers). */
  session: string | undefined;
  state: 'active' | 'stalled' | 'left';
  stalledUntil: number;
  inFlight: Dispatch[];
  done: number;
  /** Tasks and time that define the device's mean (cache hits say nothing about its speed). */
  timed: number;
  busyMs: number;
}

/** Steal a running task only when starting over here is clearly sooner (guards against churn). */
const STEAL_MARGIN = 1.25;
/** A task running this many times its device's mean (or the idle device's) counts as stuck... */
const OVERDUE = 3;
/** ...but never before this long. */
const STUCK_FLOOR_MS = 30_000;
/** Fraction of a device's mean task time its running task must still have left to lose the next. */
const QUEUED_STEAL_GUARD = 0.1;

export class DevicePool {
  private readonly devices = new Map<string, Device>();
  private readonly waiting: GpuTask[] = [];
  private readonly proxies = new Map<string, StepActivities>();

  constructor(
    private readonly prefix: string,
    private readonly slots: number,
    private readonly stalledCooldownMs: number,
    private readonly progress: ProgressTracker,
  ) {}

  join(id: string, session?: string): void {
    const existing = this.devices.get(id);
    if (existing) {
      // A re-announced device (e.g. its runtime restarted after a stall) is trusted again.
      existing.state = 'active';
      existing.stalledUntil = 0;
      if (session !== undefined && existing.session !== undefined && session !== existing.session) {
        // A new worker serves the device: the old one is gone with the tasks it held, which
        // would otherwise wait out their heartbeat timeout. They go to the front of the line.
        this.progress.device(id).restarts += 1;
        // Newest first: each goes to the front, so the running one ends up first again.
        for (const dispatch of [...existing.inFlight].reverse()) this.withdraw(dispatch, 'worker replaced');
      }
      existing.session = session ?? existing.session;
    } else {
      this.devices.set(id, { id, session, state: 'active', stalledUntil: 0, inFlight: [], done: 0, timed: 0, busyMs: 0 });
    }
    this.progress.device(id).state = 'active';
    this.pump();
  }

  leave(id: string): void {
    const device = this.devices.get(id);
    if (!device) return;
    device.state = 'left';
    this.progress.device(id).state = 'left';
    for (const dispatch of [...device.inFlight]) this.withdraw(dispatch, 'device left');
    this.pump();
  }

  submit(spec: ProcessSpec, task: StepTask, units: number): Promise<StepResult> {
    return new Promise<StepResult>((resolve, reject) => {
      this.waiting.push({ spec, task, units, failures: 0, avoid: [], lastError: null, resolve, reject });
      this.pump();
    });
  }

  private meanMs(device: Device): number | null {
    return device.timed > 0 ? device.busyMs / device.timed : null;
  }

  /** Takes work now or once a slot frees: not gone, not resting after a stall. */
  private usable(device: Device): boolean {
    if (device.state === 'left') return false;
    return !(device.state === 'stalled' && Date.now() < device.stalledUntil);
  }

  private available(device: Device): boolean {
    return this.usable(device) && device.inFlight.length < this.slots;
  }

  /**
   * Least loaded device with a free slot. A task that failed somewhere waits for a device it has
   * not failed on while one is usable, rather than going straight back to the one that failed it.
   */
  private choose(task: GpuTask): Device | null {
    let candidates = [...this.devices.values()].filter((d) => this.usable(d));
    if (task.avoid.length > 0 && patched('prefer-untried-devices')) {
      const untried = candidates.filter((d) => !task.avoid.includes(d.id));
      if (untried.length > 0) candidates = untried;
    }
    let best: Device | null = null;
    let bestRank = Infinity;
    for (const device of candidates) {
      if (device.inFlight.length >= this.slots) continue;
      const rank = (task.avoid.includes(device.id) ? 1000 : 0) + device.inFlight.length;
      if (rank < bestRank) {
        best = device;
        bestRank = rank;
      }
    }
    return best;
  }

  private pump(): void {
    // Not only the head of the line: a task waiting for an untried device must not block others.
    for (let index = 0; index < this.waiting.length; ) {
      const device = this.choose(this.waiting[index]);
      if (device) this.dispatch(this.waiting.splice(index, 1)[0], device);
      else index += 1;
    }
    if (this.waiting.length === 0) this.rebalance();
  }

  /** Idle devices take over work that would finish later on the device that holds it. */
  private rebalance(): void {
    for (const idle of this.devices.values()) {
      if (idle.inFlight.length > 0 || !this.available(idle) || idle.state !== 'active') continue;
      const victim = this.stealable(idle);
      if (!victim) continue;
      this.withdraw(victim, 'moved');
      this.dispatch(victim.task, idle, true);
    }
  }

  private stealable(idle: Device): Dispatch | null {
    const now = Date.now();
    const ownMean = this.meanMs(idle);
    if (ownMean === null) return null;
    let best: Dispatch | null = null;
    let bestFinish = -Infinity;
    for (const device of this.devices.values()) {
      if (device === idle || device.inFlight.length === 0) continue;
      const running = device.inFlight[0];
      const runningEnd = this.expectedEnd(device, running, ownMean, now);
      if (runningEnd === null) continue;
      const last = device.inFlight[device.inFlight.length - 1];
      let finish = runningEnd;
      if (last !== running) {
        // A queued task only once its predecessor is clearly not about to finish: if it had just
        // finished (its completion not yet seen here), the queued one may already be running.
        const mean = this.meanMs(device);
        if (mean === null || runningEnd - now < QUEUED_STEAL_GUARD * mean) continue;
        finish = runningEnd + mean;
      }
      if (now + ownMean * STEAL_MARGIN < finish && finish > bestFinish) {
        best = last;
        bestFinish = finish;
      }
    }
    return best;
  }

  /** When the running task of `device` should end: from its mean, or never if it looks stuck. */
  private expectedEnd(device: Device, running: Dispatch, ownMean: number, now: number): number | null {
    if (running.startedAt === null) return null;
    const mean = this.meanMs(device);
    const taken = now - running.startedAt;
    if (patched('steal-overdue-tasks')) {
      // Far overdue against its device's mean (or, before it has one, against this device's):
      // treat as stuck. A device whose worker hangs never starts what is queued for it; this
      // rescues those tasks. The floor keeps timing noise on short tasks from moving work.
      if (taken > Math.max(OVERDUE * (mean ?? ownMean), STUCK_FLOOR_MS)) return Infinity;
      return mean === null ? null : running.startedAt + mean;
    }
    // The rule of runs started before the patch.
    if (mean !== null) return running.startedAt + mean;
    return taken > OVERDUE * ownMean ? Infinity : null;
  }

  private activities(device: Device, spec: ProcessSpec): StepActivities {
    const key = `${device.id}\u0000${spec.name}`;
    let proxy = this.proxies.get(key);
    if (!proxy) {
      proxy = proxyActivities<StepActivities>({
        taskQueue: gpuQueue(this.prefix, device.id),
        startToCloseTimeout: spec.timeouts.startToCloseMs,
        heartbeatTimeout: spec.timeouts.heartbeatMs ?? undefined,
        // A queued task waits at most for its predecessor; longer means the device's worker is gone.
        scheduleToStartTimeout: spec.timeouts.startToCloseMs,
        // The pool re-queues failed tasks itself, preferring another device.
        retry: { maximumAttempts: 1 },
        cancellationType: ActivityCancellationType.TRY_CANCEL,
      });
      this.proxies.set(key, proxy);
    }
    return proxy;
  }

  private dispatch(task: GpuTask, device: Device, moved = false): void {
    const dispatch: Dispatch = {
      task,
      device,
      scope: new CancellationScope(),
      startedAt: device.inFlight.length === 0 ? Date.now() : null,
      withdrawn: null,
    };
    device.inFlight.push(dispatch);
    this.progress.device(device.id).inFlight = device.inFlight.length;
    if (!moved) this.progress.started(task.spec.name);
    const step: StepTask = { ...task.task, previousAttempts: task.failures };
    dispatch.scope
      .run(() => this.activities(device, task.spec).runStep(step))
      .then(
        (result) => this.completed(dispatch, result),
        (error) => this.failed(dispatch, error),
      );
  }

  private remove(dispatch: Dispatch): void {
    const device = dispatch.device;
    const index = device.inFlight.indexOf(dispatch);
    if (index < 0) return;
    device.inFlight.splice(index, 1);
    // With one task running per device, the next in line starts when this one ends.
    if (index === 0 && device.inFlight.length > 0 && device.inFlight[0].startedAt === null) {
      device.inFlight[0].startedAt = Date.now();
    }
    this.progress.device(device.id).inFlight = device.inFlight.length;
  }

  /** Cancel a dispatch the pool no longer wants on its device (the task lives on elsewhere). */
  private withdraw(dispatch: Dispatch, reason: WithdrawReason): void {
    dispatch.withdrawn = reason;
    this.remove(dispatch);
    dispatch.scope.cancel();
    if (reason !== 'moved') {
      this.progress.requeued(dispatch.task.spec.name);
      this.waiting.unshift(dispatch.task);
    }
  }

  private completed(dispatch: Dispatch, result: StepResult): void {
    if (dispatch.withdrawn) return;
    const device = dispatch.device;
    const startedAt = dispatch.startedAt ?? Date.now();
    this.remove(dispatch);
    device.done += 1;
    // Before this patch, cache hits counted towards the mean; old runs replay with that rule.
    if (!result.cached || !patched('untimed-cache-hits')) {
      device.timed += 1;
      device.busyMs += Date.now() - startedAt;
    }
    if (device.state === 'stalled') device.state = 'active';
    const report = this.progress.device(device.id);
    report.state = device.state;
    report.done = device.done;
    report.unitsDone += dispatch.task.units;
    const mean = this.meanMs(device);
    report.meanTaskSeconds = mean === null ? null : mean / 1000;
    this.progress.finished(dispatch.task.spec.name, result.cached ? 'cached' : 'done', 1, dispatch.task.units);
    dispatch.task.resolve(result);
    this.pump();
  }

  private failed(dispatch: Dispatch, error: unknown): void {
    if (dispatch.withdrawn) return;
    const { task, device } = dispatch;
    this.remove(dispatch);
    task.failures += 1;
    task.lastError = describeFailure(error);
    if (!task.avoid.includes(device.id)) task.avoid.push(device.id);
    if (isStall(error)) this.stall(device);
    const nonRetryable = error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.nonRetryable;
    if (nonRetryable || task.failures >= task.spec.retry.maximumAttempts) {
      this.progress.finished(task.spec.name, 'failed');
      const where = task.task.item === null ? task.spec.name : `${task.spec.name}[${task.task.item}]`;
      task.reject(
        ApplicationFailure.nonRetryable(
          `gpu task ${where} failed ${task.failures} time(s) (devices tried: ${task.avoid.join(', ')}); last error: ${task.lastError}`,
          'GpuTaskFailed',
        ),
      );
    } else {
      this.progress.requeued(task.spec.name);
      this.waiting.unshift(task);
    }
    this.pump();
  }

  private stall(device: Device): void {
    device.state = 'stalled';
    device.stalledUntil = Date.now() + this.stalledCooldownMs;
    this.progress.device(device.id).state = 'stalled';
    // Tasks queued behind the stalled one would wait on a device that is not taking work.
    for (const dispatch of [...device.inFlight]) this.withdraw(dispatch, 'device stalled');
    sleep(this.stalledCooldownMs).then(() => this.pump());
  }
}

function isStall(error: unknown): boolean {
  return (
    error instanceof ActivityFailure &&
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
