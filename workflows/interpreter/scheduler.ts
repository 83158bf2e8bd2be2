// Which device runs which gpu task, decided as plain bookkeeping with explicit time, so the same
// code drives the workflow (device-pool.ts turns its decisions into activities) and the balance
// simulation of the tests (virtual time). Deterministic: no I/O, no clocks, no randomness.
//
// - Each device holds at most `slots` dispatches: one running, the next already taken by the
//   device's worker (the embed step's shard already queued and prepared in the device's runtime;
//   activities/steps/workers.ts), so it never waits for the workflow between tasks.
// - A dispatch is one task, or for a grouped process several consecutive items sized for the
//   device: a share of the work left in proportion to the device's measured speed, a third of
//   it (so every device comes back for more several times), at most `maxGroupMs` of its work,
//   at least one item. Groups are large while much work is left and one item near the end, so
//   devices of any mix of speeds finish together.
// - A device that runs dry while nothing waits takes over work that would finish later where it
//   is (a queued dispatch, or a running one that is far from done or looks stuck); the old
//   attempt is withdrawn, so no task completes twice.
// - A failed dispatch's tasks go back to the front of the line and wait for a device they have
//   not failed on while one is usable; a stall (no heartbeat, or the runtime stopped answering)
//   rests the device for a cool-down; a device that fails `maxConsecutiveFailures` dispatches in
//   a row is taken out of the run until a new worker serves it.

export interface SchedulerPolicy {
  slots: number;
  stalledCooldownMs: number;
  /** A grouped dispatch takes 1/groupDivisor of the device's share of the work left... */
  groupDivisor: number;
  /** ...but never more than this much of the device's time. */
  maxGroupMs: number;
  maxConsecutiveFailures: number;
}

export const defaultSchedulerPolicy: Omit<SchedulerPolicy, 'slots' | 'stalledCooldownMs'> = {
  groupDivisor: 3,
  maxGroupMs: 10 * 60_000,
  maxConsecutiveFailures: 3,
};

/** Steal a running task only when starting over here is clearly sooner (guards against churn). */
const STEAL_MARGIN = 1.25;
/** A dispatch running this many times its expected duration counts as stuck... */
const OVERDUE = 3;
/** ...but never before this long. */
const STUCK_FLOOR_MS = 30_000;
/** Fraction of a queued dispatch's expected time its predecessor must still have left to lose it. */
const QUEUED_STEAL_GUARD = 0.1;

export interface SchedTask {
  id: number;
  /** The process; consecutive waiting tasks of a grouped process may share a dispatch. */
  process: string;
  grouped: boolean;
  maximumAttempts: number;
  units: number;
  failures: number;
  /** Devices this task failed on: tried last. */
  avoid: string[];
}

export type WithdrawReason = 'moved' | 'device stalled' | 'device left' | 'device taken out' | 'worker replaced';

export interface SchedDispatch {
  id: number;
  device: string;
  tasks: SchedTask[];
  units: number;
  /** When it probably began running: its predecessor's end, or its dispatch. */
  startedAt: number | null;
}

export type DeviceState = 'active' | 'stalled' | 'left' | 'failed';

export interface SchedDevice {
  id: string;
  /** The worker process serving it, as its announcements name it. */
  session: string | undefined;
  state: DeviceState;
  stalledUntil: number;
  inFlight: SchedDispatch[];
  /** Tasks completed here. */
  done: number;
  /** Computed (not cached) units and the time they took: the device's speed. */
  timedUnits: number;
  busyMs: number;
  consecutiveFailures: number;
  stalls: number;
  restarts: number;
}

export type Action =
  | { kind: 'dispatch'; dispatch: SchedDispatch; moved: boolean }
  | { kind: 'withdraw'; dispatch: SchedDispatch; reason: WithdrawReason };

export interface Notice {
  at: number;
  device: string;
  kind: 'stalled' | 'taken out' | 'worker replaced';
  message: string;
}

/** A failed dispatch, as the scheduler weighs it. */
export interface DispatchFailure {
  /** The device stopped making progress (a lost heartbeat, or its runtime stopped answering). */
  stall: boolean;
  /** Another attempt may succeed (the implementation did not say otherwise). */
  retryable: boolean;
  description: string;
}

export interface FailureOutcome {
  actions: Action[];
  /** Tasks that may not be tried again (attempts used up, or a failure no retry fixes). */
  exhausted: SchedTask[];
}

export class Scheduler {
  readonly devices = new Map<string, SchedDevice>();
  /** Tasks waiting for a device, in the order they will be handed out. */
  readonly waiting: SchedTask[] = [];
  readonly notices: Notice[] = [];
  private dispatches = 1;

  constructor(readonly policy: SchedulerPolicy) {}

  join(id: string, session: string | undefined, now: number): Action[] {
    const actions: Action[] = [];
    const existing = this.devices.get(id);
    if (!existing) {
      this.devices.set(id, { id, session, state: 'active', stalledUntil: 0, inFlight: [], done: 0, timedUnits: 0, busyMs: 0, consecutiveFailures: 0, stalls: 0, restarts: 0 });
      return this.pump(now);
    }
    const replaced = session !== undefined && existing.session !== undefined && session !== existing.session;
    if (replaced) {
      // A new worker serves the device: the old one is gone with the tasks it held, which would
      // otherwise wait out their heartbeat timeout. They go to the front of the line.
      existing.restarts += 1;
      this.notice(now, id, 'worker replaced', `a new worker serves ${id}; the ${existing.inFlight.length} task(s) its old worker held are handed out again`);
      // Newest first: each goes to the front, so the running one ends up first again.
      for (const dispatch of [...existing.inFlight].reverse()) actions.push(this.withdraw(dispatch, 'worker replaced', now));
    }
    // A device taken out for failing comes back only with a new worker; a stalled one whenever
    // it is announced again (e.g. its runtime restarted).
    if (existing.state !== 'failed' || replaced) {
      existing.state = 'active';
      existing.stalledUntil = 0;
    }
    if (replaced) existing.consecutiveFailures = 0;
    existing.session = session ?? existing.session;
    return [...actions, ...this.pump(now)];
  }

  leave(id: string, now: number): Action[] {
    const device = this.devices.get(id);
    if (!device) return [];
    device.state = 'left';
    const actions = [...device.inFlight].reverse().map((d) => this.withdraw(d, 'device left', now));
    return [...actions, ...this.pump(now)];
  }

  submit(task: SchedTask, now: number): Action[] {
    this.waiting.push(task);
    return this.pump(now);
  }

  /** Time passed (a cool-down may have ended). */
  tick(now: number): Action[] {
    return this.pump(now);
  }

  /** `computedUnits`: the units of the dispatch that were computed, not taken from the cache. */
  completed(dispatch: SchedDispatch, computedUnits: number, now: number): Action[] {
    const device = this.devices.get(dispatch.device)!;
    const startedAt = dispatch.startedAt ?? now;
    this.remove(dispatch, now);
    device.done += dispatch.tasks.length;
    device.consecutiveFailures = 0;
    // Cache hits say nothing about the device's speed.
    if (computedUnits > 0) {
      device.timedUnits += computedUnits;
      device.busyMs += now - startedAt;
    }
    if (device.state === 'stalled') device.state = 'active';
    return this.pump(now);
  }

  /** The dispatch ended because the run is being cancelled: it says nothing about its device. */
  cancelled(dispatch: SchedDispatch, now: number): Action[] {
    this.remove(dispatch, now);
    return [];
  }

  failed(dispatch: SchedDispatch, failure: DispatchFailure, now: number): FailureOutcome {
    const device = this.devices.get(dispatch.device)!;
    this.remove(dispatch, now);
    const actions: Action[] = [];
    device.consecutiveFailures += 1;
    if (failure.stall) {
      device.stalls += 1;
      device.state = 'stalled';
      device.stalledUntil = now + this.policy.stalledCooldownMs;
      this.notice(now, device.id, 'stalled', `${device.id} stopped making progress (${failure.description}); its work moves to other devices`);
      // Tasks queued behind the stalled one would wait on a device that is not taking work.
      for (const other of [...device.inFlight].reverse()) actions.push(this.withdraw(other, 'device stalled', now));
    }
    if (device.consecutiveFailures >= this.policy.maxConsecutiveFailures && device.state !== 'left') {
      device.state = 'failed';
      this.notice(now, device.id, 'taken out', `${device.id} failed ${device.consecutiveFailures} times in a row (last: ${failure.description}); taken out of the run until a new worker serves it`);
      for (const other of [...device.inFlight].reverse()) actions.push(this.withdraw(other, 'device taken out', now));
    }
    const exhausted: SchedTask[] = [];
    for (const task of [...dispatch.tasks].reverse()) {
      task.failures += 1;
      if (!task.avoid.includes(device.id)) task.avoid.push(device.id);
      if (!failure.retryable || task.failures >= task.maximumAttempts) exhausted.unshift(task);
      else this.waiting.unshift(task);
    }
    return { actions: [...actions, ...this.pump(now)], exhausted };
  }

  /** Units per ms a device computes, once it has computed anything. */
  speed(device: SchedDevice): number | null {
    return device.timedUnits > 0 && device.busyMs > 0 ? device.timedUnits / device.busyMs : null;
  }

  private notice(at: number, device: string, kind: Notice['kind'], message: string): void {
    this.notices.push({ at, device, kind, message });
  }

  /** Takes work now or once a slot frees: not gone, not resting after a stall. */
  private usable(device: SchedDevice, now: number): boolean {
    if (device.state === 'left' || device.state === 'failed') return false;
    return !(device.state === 'stalled' && now < device.stalledUntil);
  }

  private pump(now: number): Action[] {
    const actions: Action[] = [];
    for (let next = this.plan(now); next; next = this.plan(now)) {
      for (const task of next.tasks) this.waiting.splice(this.waiting.indexOf(task), 1);
      actions.push(this.dispatch(next.tasks, next.device, now, false));
    }
    // Idle devices (nothing left, or what waits is better done elsewhere) may take over work.
    actions.push(...this.rebalance(now));
    return actions;
  }

  /**
   * Earliest-finish list scheduling: the waiting tasks, in order, each planned on the usable
   * device that would finish it soonest after what it already holds (a device not yet measured
   * counts at the typical speed; a task waits for a device it has not failed on while one is
   * usable). The first device with a free slot that has tasks planned gets them (a grouped
   * process's up to the device's group size; one while its speed is unknown). In the end game the
   * plan gives a slow device nothing, because the last tasks finish sooner on faster ones, so
   * the devices finish together.
   */
  private plan(now: number): { device: SchedDevice; tasks: SchedTask[] } | null {
    const devices = [...this.devices.values()].filter((d) => this.usable(d, now));
    const free = devices.filter((d) => d.inFlight.length < this.policy.slots);
    if (free.length === 0 || this.waiting.length === 0) return null;
    const known = devices.map((d) => this.speed(d)).filter((v): v is number => v !== null);
    const typical = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 1;
    const speedOf = (d: SchedDevice) => this.speed(d) ?? typical;
    const busyUntil = new Map(devices.map((d) => [d, this.freeAt(d, now, typical)]));
    const planned = new Map<SchedDevice, SchedTask[]>(free.map((d) => [d, []]));
    const target = new Map(free.map((d) => [d, this.groupUnits(d, now)]));
    for (const task of this.waiting) {
      const untried = devices.filter((d) => !task.avoid.includes(d.id));
      let best = devices[0];
      let bestFinish = Infinity;
      for (const device of untried.length > 0 ? untried : devices) {
        const finish = busyUntil.get(device)! + task.units / speedOf(device);
        if (finish < bestFinish) {
          best = device;
          bestFinish = finish;
        }
      }
      busyUntil.set(best, bestFinish);
      const mine = planned.get(best);
      if (!mine || (mine.length > 0 && mine[0].process !== task.process)) continue;
      mine.push(task);
      const units = mine.reduce((sum, t) => sum + t.units, 0);
      if (!task.grouped || units >= target.get(best)!) return { device: best, tasks: mine };
    }
    for (const [device, tasks] of planned) if (tasks.length > 0) return { device, tasks };
    return null;
  }

  /** When `device` would be done with everything it holds, at `assumed` speed while its own is unknown. */
  private freeAt(device: SchedDevice, now: number, assumed: number): number {
    const speed = this.speed(device) ?? assumed;
    let at = now;
    for (const dispatch of device.inFlight) {
      const remaining = dispatch.startedAt === null ? dispatch.units : Math.max(0, dispatch.units - speed * (now - dispatch.startedAt));
      at += remaining / speed;
    }
    return at;
  }

  /** A third of the device's share of the work left, by measured speed; at most maxGroupMs of its time; one item until its speed is known. */
  private groupUnits(device: SchedDevice, now: number): number {
    const active = [...this.devices.values()].filter((d) => this.usable(d, now));
    const known = active.map((d) => this.speed(d)).filter((s): s is number => s !== null);
    const typical = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 1;
    const speedOf = (d: SchedDevice) => this.speed(d) ?? typical;
    const total = active.reduce((sum, d) => sum + speedOf(d), 0) || 1;
    const left = this.waiting.reduce((sum, t) => sum + t.units, 0) + active.reduce((sum, d) => sum + d.inFlight.reduce((s, x) => s + x.units, 0), 0);
    const own = this.speed(device);
    // Until a device has computed something its speed is unknown: one item measures it.
    if (own === null) return 0;
    const share = (left * own) / total / this.policy.groupDivisor;
    return Math.min(share, own * this.policy.maxGroupMs);
  }

  private dispatch(tasks: SchedTask[], device: SchedDevice, now: number, moved: boolean): Action {
    const dispatch: SchedDispatch = {
      id: this.dispatches++,
      device: device.id,
      tasks,
      units: tasks.reduce((sum, t) => sum + t.units, 0),
      startedAt: device.inFlight.length === 0 ? now : null,
    };
    device.inFlight.push(dispatch);
    return { kind: 'dispatch', dispatch, moved };
  }

  private remove(dispatch: SchedDispatch, now: number): void {
    const device = this.devices.get(dispatch.device)!;
    const index = device.inFlight.indexOf(dispatch);
    if (index < 0) return;
    device.inFlight.splice(index, 1);
    // One dispatch runs per device at a time: the next in line starts when this one ends.
    if (index === 0 && device.inFlight.length > 0 && device.inFlight[0].startedAt === null) device.inFlight[0].startedAt = now;
  }

  /** Take a dispatch off its device; unless it moves to a chosen device, its tasks wait at the front. */
  private withdraw(dispatch: SchedDispatch, reason: WithdrawReason, now: number): Action {
    this.remove(dispatch, now);
    if (reason !== 'moved') this.waiting.unshift(...dispatch.tasks);
    return { kind: 'withdraw', dispatch, reason };
  }

  /** Idle devices take over work that would finish later on the device that holds it. */
  private rebalance(now: number): Action[] {
    const actions: Action[] = [];
    for (const idle of this.devices.values()) {
      if (idle.state !== 'active' || idle.inFlight.length > 0 || !this.usable(idle, now)) continue;
      const victim = this.stealable(idle, now);
      if (!victim) continue;
      actions.push(this.withdraw(victim, 'moved', now));
      actions.push(this.dispatch(victim.tasks, idle, now, true));
    }
    return actions;
  }

  private stealable(idle: SchedDevice, now: number): SchedDispatch | null {
    const ownSpeed = this.speed(idle);
    if (ownSpeed === null) return null;
    let best: SchedDispatch | null = null;
    let bestFinish = -Infinity;
    for (const device of this.devices.values()) {
      if (device === idle || device.inFlight.length === 0) continue;
      const running = device.inFlight[0];
      const runningEnd = this.expectedEnd(device, running, ownSpeed, now);
      if (runningEnd === null) continue;
      const last = device.inFlight[device.inFlight.length - 1];
      let finish = runningEnd;
      if (last !== running) {
        // A queued dispatch only once its predecessor is clearly not about to finish: if that had
        // just finished (its completion not yet seen here), the queued one may already be running.
        const speed = this.speed(device);
        if (speed === null || runningEnd - now < QUEUED_STEAL_GUARD * (last.units / speed)) continue;
        finish = runningEnd + last.units / speed;
      }
      if (now + (last.units / ownSpeed) * STEAL_MARGIN < finish && finish > bestFinish) {
        best = last;
        bestFinish = finish;
      }
    }
    return best;
  }

  /** When `running` on `device` should end: from its speed, or never if it looks stuck. */
  private expectedEnd(device: SchedDevice, running: SchedDispatch, idleSpeed: number, now: number): number | null {
    if (running.startedAt === null) return null;
    const speed = this.speed(device);
    const expected = running.units / (speed ?? idleSpeed);
    // Far overdue against its device's speed (or, before it has one, the idle device's): treat
    // as stuck. A device whose worker hangs never starts what is queued for it; this rescues
    // those tasks. The floor keeps timing noise on short tasks from moving work.
    if (now - running.startedAt > Math.max(OVERDUE * expected, STUCK_FLOOR_MS)) return Infinity;
    return speed === null ? null : running.startedAt + expected;
  }
}
