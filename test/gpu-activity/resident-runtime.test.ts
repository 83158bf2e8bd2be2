// The GPU activity's runtime client against the real `python -m virnucpro_runtime serve` on CPU
// with tiny synthetic weights: load once, run shards, progress, cancel, bad input. (A runtime
// killed mid-shard is covered through Temporal in embed-step.test.ts.)
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LoadArgs, ProgressEvent } from '../../activities/gpu/protocol';
import { ResidentRuntime } from '../../activities/gpu/resident-runtime';
import { RuntimeFailure } from '../../activities/gpu/runtime-process';
import { readFrameScores } from '../../activities/outputs/tables';
import { writeFrameShard } from './frames-fixture';

const tiny: LoadArgs = { esm2: null, dnabert: null, classifier: null, synthetic: 'tiny', dtype: 'float32', token_budget: null };

async function scores(file: string): Promise<number[]> {
  const out: number[] = [];
  for await (const frame of readFrameScores(file)) out.push(frame.scoreOthers, frame.scoreVirus);
  return out;
}

describe('gpu activity: resident runtime on CPU', function () {
  this.timeout(180_000);
  let dir: string;
  let runtime: ResidentRuntime;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'virnucpro-runtime-'));
    runtime = new ResidentRuntime('test.gpu0', { kind: 'cpu', progressIntervalS: 0.2 });
  });
  after(async () => {
    await runtime.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads once, scores shards with progress, and gives the same scores for the same shard', async () => {
    const shard = await writeFrameShard(path.join(dir, 'frames-00000.arrow'), 24);
    const progress: ProgressEvent[] = [];
    const first = await runtime.run(tiny, { shard: shard.path, out: path.join(dir, 'a.arrow'), embeddings: false }, { onProgress: (e) => progress.push(e) });
    assert.equal(first.frames, 24);
    assert.ok(progress.length > 0, 'progress events arrive while the shard runs');
    assert.ok(progress.every((e) => e.frames_total === 24 && e.frames_done <= 24));
    const pid = runtime.pid;
    const second = await runtime.run(tiny, { shard: shard.path, out: path.join(dir, 'b.arrow'), embeddings: false });
    assert.equal(runtime.pid, pid, 'the same process serves the next shard (models stay resident)');
    assert.equal(runtime.starts, 1);
    assert.equal(second.sha256, first.sha256);
    const values = await scores(first.out);
    assert.equal(values.length, 48);
    assert.ok(values.every((v) => v >= 0 && v <= 1));
  });

  it('turns an abort into a protocol cancel', async () => {
    const shard = await writeFrameShard(path.join(dir, 'frames-00002.arrow'), 200, 3);
    const abort = new AbortController();
    await assert.rejects(
      runtime.run(tiny, { shard: shard.path, out: path.join(dir, 'd.arrow'), embeddings: false }, {
        onProgress: () => abort.abort(),
        signal: abort.signal,
      }),
      (error: unknown) => error instanceof RuntimeFailure && error.type === 'cancelled',
    );
    assert.ok(runtime.pid, 'a cancelled run leaves the runtime alive');
  });

  it('reports a bad shard as an input error naming the file', async () => {
    const missing = path.join(dir, 'frames-missing.arrow');
    await assert.rejects(
      runtime.run(tiny, { shard: missing, out: path.join(dir, 'e.arrow'), embeddings: false }),
      (error: unknown) => error instanceof RuntimeFailure && error.type === 'input' && error.message.includes('frames-missing.arrow'),
    );
  });
});
