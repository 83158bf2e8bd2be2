// The GPU activity's runtime client against the real `python -m virnucpro_runtime serve` on CPU
// with tiny synthetic weights: load once, run shards, progress, cancel, bad input. (A runtime
// killed mid-shard is covered through Temporal in embed-step.test.ts.)
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LoadArgs, ProgressEvent } from '../../activities/gpu/protocol';
import { numericsDifferences, ResidentRuntime } from '../../activities/gpu/resident-runtime';
import { RuntimeFailure } from '../../activities/gpu/runtime-process';
import { readFrameScores } from '../../activities/outputs/tables';
import { writeFrameShard } from './frames-fixture';

const tiny: LoadArgs = { esm2: null, dnabert: null, classifier: null, synthetic: 'tiny', precision: 'fp32', token_budget: null };
const scoresOnly = { embeddings: false };

async function scores(file: string): Promise<number[]> {
  const out: number[] = [];
  for await (const frame of readFrameScores(file, [])) out.push(frame.scoreOthers, frame.scoreVirus);
  return out;
}

describe('gpu activity: resident runtime on CPU', function () {
  this.timeout(180_000);
  let dir: string;
  let runtime: ResidentRuntime;

  let stateDir: string;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'virnucpro-runtime-'));
    stateDir = path.join(dir, 'state');
    runtime = new ResidentRuntime('test.gpu0', { kind: 'cpu', progressIntervalS: 0.2, stateDir });
  });
  after(async () => {
    await runtime.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads once, scores shards with progress, and gives the same scores for the same shard', async () => {
    const shard = await writeFrameShard(path.join(dir, 'frames-00000.arrow'), 24);
    const progress: ProgressEvent[] = [];
    const first = await runtime.run(tiny, { shard: shard.path, out: path.join(dir, 'a.arrow'), ...scoresOnly }, { onProgress: (e) => progress.push(e) });
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

  it('queues a second shard in the runtime while the first computes, and scores both', async () => {
    const [a, b] = [await writeFrameShard(path.join(dir, 'frames-00010.arrow'), 150, 7), await writeFrameShard(path.join(dir, 'frames-00011.arrow'), 30, 8)];
    const phases: string[] = [];
    const [first, second] = await Promise.all([
      runtime.run(tiny, { shard: a.path, out: path.join(dir, 'q1.arrow'), ...scoresOnly }),
      runtime.run(tiny, { shard: b.path, out: path.join(dir, 'q2.arrow'), ...scoresOnly }, { onWaiting: (phase) => phases.push(phase) }),
    ]);
    assert.deepEqual([first.frames, second.frames], [150, 30]);
    assert.ok(second.started_at >= first.finished_at - 0.01, 'the runtime computes one shard at a time');
    assert.equal(runtime.starts, 1);
  });

  it('cancels a queued shard in the runtime before it starts: no result, and the one before is unaffected', async () => {
    const [a, b] = [await writeFrameShard(path.join(dir, 'frames-00012.arrow'), 400, 10), await writeFrameShard(path.join(dir, 'frames-00013.arrow'), 30, 11)];
    const withdraw = new AbortController();
    const sentBefore = runtime.sentAhead;
    let queuedProgressed = false;
    const first = runtime.run(tiny, { shard: a.path, out: path.join(dir, 'w1.arrow'), ...scoresOnly }, { onProgress: () => withdraw.abort() });
    const queued = runtime.run(tiny, { shard: b.path, out: path.join(dir, 'w2.arrow'), ...scoresOnly }, { onProgress: () => (queuedProgressed = true), signal: withdraw.signal });
    await assert.rejects(queued, (error: unknown) => error instanceof RuntimeFailure && error.type === 'cancelled' && /before it started/.test(error.message));
    assert.equal(runtime.sentAhead, sentBefore + 1, 'the second shard was sent while the first was outstanding');
    assert.equal((await first).frames, 400);
    assert.equal(queuedProgressed, false, 'the queued shard never reported progress');
    assert.equal(existsSync(path.join(dir, 'w2.arrow')), false, 'the withdrawn shard wrote no result');
  });

  it('restarts a killed runtime with the numerics of the one it replaces: the same bytes come out', async () => {
    const shard = await writeFrameShard(path.join(dir, 'frames-00020.arrow'), 400, 9);
    const clean = await runtime.run(tiny, { shard: shard.path, out: path.join(dir, 'clean.arrow'), ...scoresOnly });
    const pinned = runtime.numericsOf(tiny)!;
    assert.equal(clean.numerics, pinned.id);
    // A budget tuned meanwhile would give a fresh runtime other batches (and other low bits)...
    writeFileSync(path.join(stateDir, 'token-budgets.json'), JSON.stringify({ 'cpu|float32': { esm2_token_budget: 333, esm2_shape: [1, 2560] } }));
    const fresh = new ResidentRuntime('test.gpu9', { kind: 'cpu', stateDir });
    try {
      assert.equal((await fresh.preload(tiny)).numerics.esm2_token_budget, 333);
    } finally {
      await fresh.shutdown();
    }
    // ...but a replacement plans with the pinned budgets.
    let killed = false;
    const interruptedRun = runtime.run(tiny, { shard: shard.path, out: path.join(dir, 'interrupted.arrow'), ...scoresOnly }, {
      onProgress: (event) => {
        if (!killed && event.frames_done > 0 && event.frames_done < 200) {
          killed = true;
          process.kill(runtime.pid!, 'SIGKILL');
        }
      },
    });
    // A shard queued behind it dies with the runtime too and reruns; the one death counts once.
    const queuedRun = runtime.run(tiny, { shard: shard.path, out: path.join(dir, 'queued-behind.arrow'), ...scoresOnly });
    const [interrupted, queued] = await Promise.all([interruptedRun, queuedRun]);
    assert.ok(killed, 'the runtime was killed mid-shard');
    assert.deepEqual([interrupted.restarts, queued.restarts], [1, 0]);
    assert.equal(interrupted.numerics, pinned.id);
    assert.equal(interrupted.sha256, clean.sha256, 'the rerun shard is byte-identical');
    assert.equal(queued.sha256, clean.sha256);
    rmSync(path.join(stateDir, 'token-budgets.json'));
  });

  it('tells a slow runtime from a stalled one: a stopped runtime is killed and reported as stalled', async () => {
    const watched = new ResidentRuntime('test.gpu7', { kind: 'cpu', progressIntervalS: 0.2, stateDir }, 3_000);
    try {
      // Slow is fine: progress keeps coming, however long the shard takes.
      const slow = await writeFrameShard(path.join(dir, 'frames-00030.arrow'), 600, 11);
      const finished = await watched.run(tiny, { shard: slow.path, out: path.join(dir, 'slow.arrow'), ...scoresOnly });
      assert.ok(finished.finished_at - finished.started_at > 0, 'the shard ran');
      // Stopped (SIGSTOP) is not: nothing comes for the watchdog's 3 s.
      let stopped = false;
      const stoppedRun = watched.run(tiny, { shard: slow.path, out: path.join(dir, 'stopped.arrow'), ...scoresOnly }, {
        onProgress: () => {
          if (!stopped) {
            stopped = true;
            process.kill(watched.pid!, 'SIGSTOP');
          }
        },
      });
      // A shard queued behind the stopped one is not what stalled: it waits, then runs on the
      // fresh runtime that is started at once.
      const queuedBehind = watched.run(tiny, { shard: slow.path, out: path.join(dir, 'behind.arrow'), ...scoresOnly });
      await assert.rejects(stoppedRun, (error: unknown) => error instanceof RuntimeFailure && error.type === 'stalled' && /sent nothing for 3 s/.test(error.message));
      const behind = await queuedBehind;
      assert.equal(behind.sha256, finished.sha256);
      assert.equal(behind.restarts, 1);
      assert.equal(watched.starts, 2);
    } finally {
      await watched.shutdown();
    }
  });

  it('stops a runtime that only loads models nobody waits for at once, and one running a shard gracefully', async () => {
    const loading = new ResidentRuntime('test.gpu6', { kind: 'cpu', stateDir });
    const preloaded = loading.preload(tiny);
    await loading.shutdown();
    await assert.rejects(preloaded, (error: unknown) => error instanceof RuntimeFailure && error.type === 'exited' && /SIGKILL/.test(error.message));

    const running = new ResidentRuntime('test.gpu5', { kind: 'cpu', stateDir });
    const shard = await writeFrameShard(path.join(dir, 'frames-00040.arrow'), 24, 12);
    let stopping: Promise<void> | undefined;
    const ran = running.run(tiny, { shard: shard.path, out: path.join(dir, 'graceful.arrow'), ...scoresOnly }, {
      onProgress: () => {
        stopping ??= running.shutdown();
      },
    });
    // The shard in progress is cancelled by the runtime's own shutdown, not killed.
    await assert.rejects(ran, (error: unknown) => error instanceof RuntimeFailure && !/SIGKILL/.test(error.message));
    await stopping;
  });

  it('names the numerics that differ', () => {
    const base = { id: '0'.repeat(16), device_name: 'cpu', torch: '2', precision: { esm2: 'float32' }, esm2_token_budget: 4096, dnabert_token_budget: 8192, compile_esm2: false, esm2_arithmetic: null, compile_dnabert: false, inductor_deterministic: false };
    assert.deepEqual(numericsDifferences(base, { ...base, id: '1'.repeat(16), esm2_token_budget: 2048, precision: { esm2: 'bfloat16' } }), [
      'precision: {"esm2":"float32"} -> {"esm2":"bfloat16"}',
      'esm2_token_budget: 4096 -> 2048',
    ]);
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
