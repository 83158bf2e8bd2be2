// The device pool's scheduler (workflows/interpreter/scheduler.ts, the very code the workflow runs)
// driven in virtual time by simulated devices of given speeds: how evenly do they finish, how
// close to the ideal (all work over the sum of the speeds) is the run, is every item computed once?
//
// A device computes one dispatch at a time, its items one after the other (the runtime reads the
// next shard while one computes, so items of a dispatch follow each other without a gap), after
// a fixed hand-over cost per dispatch. A dispatch the scheduler moves away stops at once: its
// finished items count as done (they are cached), the item under way is lost.
import { type Action, type SchedDispatch, Scheduler, defaultSchedulerPolicy } from '../../workflows/interpreter/scheduler';

export interface SimDevice {
  id: string;
  /** Units (frames) per second. */
  speed: number;
}

export interface SimOptions {
  devices: SimDevice[];
  /** Units of each item (frames per shard), in order. */
  items: number[];
  slots?: number;
  /** Seconds a dispatch costs before its first item starts (activity hand-over). */
  handOverS?: number;
  /** Seconds each item costs its device besides its frames (writing its result, starting the
   * next: 0.4-0.8 s between shards in the H100 run's trace.tsv); idle, not busy, time. */
  perItemS?: number;
  /** Each dispatch and move as it happens. */
  log?: (line: string) => void;
}

export interface SimResult {
  wallS: number;
  idealS: number;
  devices: Array<{ id: string; speed: number; frames: number; items: number; busyS: number; idleFraction: number; finishS: number }>;
  /** Items whose computation completed more than once (must be none). */
  computedTwice: number;
  /** Units lost to moved dispatches (the item under way when it moved). */
  lostUnits: number;
  dispatches: number;
}

interface Running {
  dispatch: SchedDispatch;
  started: number;
  /** When each of its items completes (seconds), cached items taking no time. */
  itemEnds: number[];
}

export function simulate(options: SimOptions): SimResult {
  const handOver = options.handOverS ?? 0.5;
  const perItem = options.perItemS ?? 0;
  const scheduler = new Scheduler({ ...defaultSchedulerPolicy, slots: options.slots ?? 2, stalledCooldownMs: 60_000 });
  const speedOf = new Map(options.devices.map((d) => [d.id, d.speed]));
  const queues = new Map<string, SchedDispatch[]>(options.devices.map((d) => [d.id, []]));
  const running = new Map<string, Running | null>(options.devices.map((d) => [d.id, null]));
  const doneItems = new Map<number, number>(); // task id -> completed computations
  const cached = new Set<number>(); // task ids whose result is in the cache
  const frames = new Map<string, number>(options.devices.map((d) => [d.id, 0]));
  const items = new Map<string, number>(options.devices.map((d) => [d.id, 0]));
  const busy = new Map<string, number>(options.devices.map((d) => [d.id, 0]));
  const finish = new Map<string, number>(options.devices.map((d) => [d.id, 0]));
  let lostUnits = 0;
  let dispatches = 0;
  let now = 0;

  /** Time `current` spent computing (not handing over, not between items) until `until`. */
  const computeTime = (current: Running, until: number) => {
    const started = current.itemEnds.filter((end, k) => (k === 0 ? current.started + handOver : current.itemEnds[k - 1]) < until).length;
    return Math.max(0, Math.min(until, current.itemEnds[current.itemEnds.length - 1]) - (current.started + handOver) - perItem * started);
  };
  const startNext = (device: string) => {
    if (running.get(device)) return;
    const next = queues.get(device)!.shift();
    if (!next) return;
    let t = now + handOver;
    const itemEnds = next.tasks.map((task) => {
      if (!cached.has(task.id)) t += perItem + task.units / speedOf.get(device)!;
      return t;
    });
    running.set(device, { dispatch: next, started: now, itemEnds });
  };
  const apply = (actions: Action[]) => {
    for (const action of actions) {
      const device = action.dispatch.device;
      options.log?.(`${now.toFixed(1)} ${action.kind} ${device} ${action.dispatch.tasks.length} item(s) [${action.dispatch.tasks.map((t) => t.id).join(',')}]${action.kind === 'withdraw' ? ` ${action.reason}` : action.moved ? ' moved' : ''}`);
      if (action.kind === 'dispatch') {
        dispatches += 1;
        queues.get(device)!.push(action.dispatch);
        startNext(device);
        continue;
      }
      const queue = queues.get(device)!;
      const index = queue.indexOf(action.dispatch);
      if (index >= 0) {
        queue.splice(index, 1);
        continue;
      }
      const current = running.get(device);
      if (current?.dispatch === action.dispatch) {
        // Finished items of a moved dispatch are in the cache; the one under way is lost.
        current.dispatch.tasks.forEach((task, k) => {
          if (current.itemEnds[k] <= now) cached.add(task.id);
        });
        const underWay = current.dispatch.tasks.findIndex((_, k) => current.itemEnds[k] > now);
        if (underWay >= 0 && !cached.has(current.dispatch.tasks[underWay].id)) {
          const begin = underWay === 0 ? current.started + handOver : current.itemEnds[underWay - 1];
          lostUnits += Math.max(0, now - begin) * speedOf.get(device)!;
        }
        busy.set(device, busy.get(device)! + computeTime(current, now));
        running.set(device, null);
        startNext(device);
      }
    }
  };

  for (const device of options.devices) apply(scheduler.join(device.id, undefined, now * 1000));
  options.items.forEach((units, id) => apply(scheduler.submit({ id, process: 'embed', grouped: true, maximumAttempts: 4, units, failures: 0, avoid: [] }, now * 1000)));

  for (;;) {
    let next: { device: string; at: number } | null = null;
    for (const [device, current] of running) {
      if (!current) continue;
      const at = current.itemEnds[current.itemEnds.length - 1];
      if (!next || at < next.at) next = { device, at };
    }
    if (!next) break;
    now = next.at;
    const current = running.get(next.device)!;
    running.set(next.device, null);
    let computed = 0;
    for (const task of current.dispatch.tasks) {
      if (cached.has(task.id)) continue;
      cached.add(task.id);
      doneItems.set(task.id, (doneItems.get(task.id) ?? 0) + 1);
      computed += task.units;
      items.set(next.device, items.get(next.device)! + 1);
    }
    frames.set(next.device, frames.get(next.device)! + computed);
    busy.set(next.device, busy.get(next.device)! + computeTime(current, now));
    finish.set(next.device, now);
    const actions = scheduler.completed(current.dispatch, computed, now * 1000);
    startNext(next.device);
    apply(actions);
  }

  if (scheduler.waiting.length > 0) throw new Error(`${scheduler.waiting.length} task(s) left waiting with every device idle`);
  const total = options.items.reduce((a, b) => a + b, 0);
  const speeds = options.devices.reduce((a, d) => a + d.speed, 0);
  const wall = Math.max(...finish.values());
  return {
    wallS: wall,
    idealS: total / speeds,
    devices: options.devices.map((d) => ({
      id: d.id,
      speed: d.speed,
      frames: frames.get(d.id)!,
      items: items.get(d.id)!,
      busyS: busy.get(d.id)!,
      idleFraction: wall > 0 ? 1 - busy.get(d.id)! / wall : 0,
      finishS: finish.get(d.id)!,
    })),
    computedTwice: [...doneItems.values()].filter((n) => n > 1).length,
    lostUnits,
    dispatches,
  };
}
