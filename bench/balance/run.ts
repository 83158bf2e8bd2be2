// Records the balance simulation (issue 11): 8 devices whose speeds differ up to 4x, through the
// scheduler the workflow runs, in virtual time.
//   npm run build && node dist/bench/balance/run.js [OUT.json]
import { writeFileSync } from 'node:fs';
import { shardFramesFor, shardSizes } from '../../activities/prepare/shard-size';
import { simulate } from './simulate';

/** H200-like devices: 580 frames/s at the top, down to a quarter of that. */
export const EIGHT_MIXED = [1, 1.4, 1.8, 2.2, 2.6, 3.0, 3.5, 4.0].map((relative, i) => ({ id: `host${i >> 2}.gpu${i % 4}`, speed: 145 * relative }));
/** `frames` frames in the shards `predict` cuts such an input into (activities/prepare/shard-size.ts: full shards, then the finer tail). */
export function shardsOf(frames: number): number[] {
  return shardSizes(frames, shardFramesFor(frames));
}
export const FRAMES = 4_000_000;

if (require.main === module) {
  const shards = shardsOf(FRAMES);
  const result = simulate({ devices: EIGHT_MIXED, items: shards, handOverS: 0.5 });
  const report = {
    what: `issue 11 balance simulation: the workflow scheduler (workflows/interpreter/scheduler.ts) in virtual time, 8 devices of relative speeds 1-4 (145-580 frames/s), ${FRAMES / 1e6}M frames in ${shards.length} shards as predict cuts such an input (${shards[0]} frames, the last ones finer down to ${shards[shards.length - 1]}), 0.5 s hand-over per dispatch`,
    date: new Date().toISOString().slice(0, 10),
    devices: result.devices.map((d) => ({ id: d.id, speed: d.speed / 145, frames: d.frames, shards: d.items, idle_fraction: Number(d.idleFraction.toFixed(4)), finish_s: Number(d.finishS.toFixed(1)) })),
    wall_s: Number(result.wallS.toFixed(1)),
    ideal_s: Number(result.idealS.toFixed(1)),
    wall_over_ideal: Number((result.wallS / result.idealS).toFixed(4)),
    finish_spread_s: Number((Math.max(...result.devices.map((d) => d.finishS)) - Math.min(...result.devices.map((d) => d.finishS))).toFixed(1)),
    computed_twice: result.computedTwice,
    lost_frames: Math.round(result.lostUnits),
    dispatches: result.dispatches,
  };
  // The same devices on smaller inputs (each cut as predict cuts it), without and with a cost
  // per shard besides its frames (0.6 s: the gaps between shards in the H100 run's trace).
  const bySize = [250_000, 500_000, 1_000_000, 2_000_000, FRAMES].flatMap((frames) =>
    [0, 0.6].map((perItemS) => {
      const r = simulate({ devices: EIGHT_MIXED, items: shardsOf(frames), handOverS: 0.5, perItemS });
      const finish = r.devices.map((d) => d.finishS);
      return {
        frames,
        shards: shardsOf(frames).length,
        per_shard_s: perItemS,
        max_idle_fraction: Number(Math.max(...r.devices.map((d) => d.idleFraction)).toFixed(4)),
        wall_over_ideal: Number((r.wallS / r.idealS).toFixed(4)),
        finish_spread_fraction: Number(((Math.max(...finish) - Math.min(...finish)) / r.wallS).toFixed(4)),
      };
    }),
  );
  Object.assign(report, { by_input_size: bySize });
  const out = process.argv[2];
  if (out) writeFileSync(out, JSON.stringify(report, null, 1) + '\n');
  console.log(JSON.stringify(report, null, 1));
}
