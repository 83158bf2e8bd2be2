// The device scheduler (workflows/interpreter/scheduler.ts, the code the workflow runs) in virtual
// time: devices of mixed speeds finish together, a slow device is not a stalled one, a stalled
// or failing one is handled by name. The numbers of the main case are recorded by
// `node dist/bench/balance/run.js` in bench/results/<date>-balance-sim.json.
import assert from 'node:assert/strict';
import { EIGHT_MIXED, FRAMES, shardsOf } from '../../bench/balance/run';
import { simulate } from '../../bench/balance/simulate';
import { Scheduler, defaultSchedulerPolicy, type Action, type SchedDispatch, type SchedTask } from '../../workflows/interpreter/scheduler';

function spread(devices: Array<{ finishS: number }>): number {
  return Math.max(...devices.map((d) => d.finishS)) - Math.min(...devices.map((d) => d.finishS));
}

describe('scheduler: balancing devices of mixed speeds (virtual time)', () => {
  it('finishes 8 devices of 1-4x speed together, near the ideal, each shard computed once', () => {
    const result = simulate({ devices: EIGHT_MIXED, items: shardsOf(FRAMES), handOverS: 0.5 });
    for (const d of result.devices) assert.ok(d.idleFraction < 0.03, `${d.id} (speed ${d.speed}) idle ${(100 * d.idleFraction).toFixed(2)}% of the run`);
    assert.ok(result.wallS <= 1.05 * result.idealS, `wall ${result.wallS.toFixed(0)} s vs ideal ${result.idealS.toFixed(0)} s`);
    assert.ok(spread(result.devices) < 0.02 * result.wallS, `devices finished ${spread(result.devices).toFixed(1)} s apart`);
    assert.equal(result.computedTwice, 0);
    assert.equal(result.devices.reduce((sum, d) => sum + d.frames, 0), FRAMES, 'every frame computed');
    assert.ok(result.dispatches < 200, `${result.dispatches} dispatches: groups keep the history small`);
  });

  it('does not let a 24 GB card hold up an 80 GB one, and gives each work by its speed', () => {
    // Budgets come from each card's own memory (gpu-runtime engine.py); their speeds differ.
    const devices = [
      { id: 'big.gpu0', speed: 560 },
      { id: 'small.gpu0', speed: 160 },
    ];
    const result = simulate({ devices, items: shardsOf(1_500_000), handOverS: 0.5 });
    assert.ok(result.wallS <= 1.03 * result.idealS, `wall ${result.wallS.toFixed(0)} s vs ideal ${result.idealS.toFixed(0)} s`);
    const [big, small] = result.devices;
    assert.ok(Math.abs(big.frames / small.frames - 560 / 160) < 0.5, `frames split ${big.frames}:${small.frames}`);
    assert.ok(spread(result.devices) < 0.02 * result.wallS);
  });
});

describe('scheduler: stalled and failing devices', () => {
  const task = (id: number): SchedTask => ({ id, process: 'embed', grouped: true, maximumAttempts: 4, units: 100, failures: 0, avoid: [] });
  const dispatches = (actions: Action[]) => actions.filter((a): a is Extract<Action, { kind: 'dispatch' }> => a.kind === 'dispatch').map((a) => a.dispatch);
  const make = () => new Scheduler({ ...defaultSchedulerPolicy, slots: 2, stalledCooldownMs: 60_000 });

  it('names a stalled device, moves its work at once and rests it', () => {
    const s = make();
    s.join('a', 's1', 0);
    s.join('b', 's2', 0);
    const first = dispatches(s.submit(task(1), 0))[0];
    const onA = first.device === 'a' ? first : null;
    const stalled: SchedDispatch = onA ?? first;
    const outcome = s.failed(stalled, { stall: true, retryable: true, description: 'HEARTBEAT timeout' }, 30_000);
    assert.deepEqual(outcome.exhausted, []);
    const moved = dispatches(outcome.actions);
    assert.equal(moved.length, 1);
    assert.notEqual(moved[0].device, stalled.device, 'the task moves to the other device');
    assert.equal(s.devices.get(stalled.device)!.state, 'stalled');
    assert.match(s.notices.at(-1)!.message, new RegExp(`^${stalled.device} stopped making progress`));
  });

  it('takes a device out after three failures in a row; a re-announcement does not bring it back, a new worker does', () => {
    const s = make();
    s.join('a', 's1', 0);
    let actions = s.submit(task(1), 0);
    for (let attempt = 0; attempt < 3; attempt++) {
      const on = dispatches(actions).find((d) => d.device === 'a')!;
      actions = s.failed(on, { stall: false, retryable: true, description: 'runtime exited' }, 1000 * (attempt + 1)).actions;
    }
    assert.equal(s.devices.get('a')!.state, 'failed');
    assert.match(s.notices.at(-1)!.message, /a failed 3 times in a row .*taken out of the run/);
    assert.deepEqual(dispatches(s.join('a', 's1', 5000)), [], 'the same worker announcing itself again changes nothing');
    assert.equal(dispatches(s.join('a', 's2', 6000)).length, 1, 'a new worker takes the device back');
  });
});
