// Records the balance simulation (issue 11): 8 devices whose speeds differ up to 4x, through the
// scheduler the workflow runs, in virtual time.
//   npm run build && node dist/bench/balance/run.js [OUT.json]
import { writeFileSync } from 'node:fs';
import { shardFramesFor } from '../../activities/prepare/shard-size';
import { simulate } from './simulate';

/** H200-like devices: 580 frames/s at the top, down to a quarter of that. */
export const EIGHT_MIXED = [1, 1.4, 1.8, 2.2, 2.6, 3.0, 3.5, 4.0].map((relative, i) => ({ id: `host${i >> 2}.gpu${i % 4}`, speed: 145 * relative }));
/** 4 million frames in shards of the size `predict` gives such an input (activities/prepare/shard-size.ts), the last one shorter. */
export function shardsOf(frames: number): number[] {
  const size = shardFramesFor(frames);
  const full = Math.floor(frames / size);
  return [...Array.from({ length: full }, () => size), ...(frames % size ? [frames % size] : [])];
}
export const FRAMES = 4_000_000;

if (require.main === module) {
  const shards = shardsOf(FRAMES);
  const result = simulate({ devices: EIGHT_MIXED, items: shards, handOverS: 0.5 });
  const report = {
    what: `issue 11 balance simulation: the workflow scheduler (workflows/interpreter/scheduler.ts) in virtual time, 8 devices of relative speeds 1-4 (145-580 frames/s), ${FRAMES / 1e6}M frames in ${shards.length} shards of ${shards[0]} (predict's default for such an input), 0.5 s hand-over per dispatch`,
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
  const out = process.argv[2];
  if (out) writeFileSync(out, JSON.stringify(report, null, 1) + '\n');
  console.log(JSON.stringify(report, null, 1));
}
