import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { tableFromIPC } from 'apache-arrow';
import { readValidMarker } from '../../activities/files/atomic';
import { prepareReads } from '../../activities/prepare/prepare-reads';
import { ReadInputError } from '../../activities/prepare/errors';
import { fixture, scratch } from './fixtures';
import { TABLES } from '../../activities/formats';
import { MIN_SHARD_FRAMES, shardSizes, TAIL_MIN_FRAMES, tailPlan } from '../../activities/prepare/shard-size';

function readTable(path: string) {
  return tableFromIPC(readFileSync(path));
}

/** `>name\nsequence\n` pairs of a golden identified file. */
function goldenFasta(name: string): Array<[string, string]> {
  const lines = gunzipSync(readFileSync(fixture(name))).toString('latin1').trimEnd().split('\n');
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < lines.length; i += 2) pairs.push([lines[i].slice(1), lines[i + 1]]);
  return pairs;
}

describe('prepare: frame shards and records table', () => {
  let tmp: ReturnType<typeof scratch>;
  beforeEach(() => (tmp = scratch()));
  afterEach(() => tmp.remove());

  it("writes the original's kept frames in order, split into shards of shardFrames rows", async () => {
    const progress: number[] = [];
    const out = await prepareReads(
      { input: fixture('klebsiella_reads.fa.xz'), expectedLength: 500, workDir: tmp.dir, shardFrames: 50 },
      { onProgress: (p) => progress.push(p.shardsWritten) },
    );
    const nucleotide = goldenFasta('golden/L500/klebsiella_reads_identified_nucleotide.fa.gz');
    const protein = goldenFasta('golden/L500/klebsiella_reads_identified_protein.faa.gz');
    assert.equal(out.stats.frames, nucleotide.length);
    assert.equal(out.shards.length, Math.ceil(nucleotide.length / 50));
    assert.deepEqual(progress.slice(-out.shards.length), out.shards.map((_, i) => i + 1));

    const rows: Array<[string, string, string]> = [];
    const recordIndexes: number[] = [];
    const chunkIndexes: number[] = [];
    for (const [i, shard] of out.shards.entries()) {
      assert.equal(shard.path, join(tmp.dir, `frames-${String(i).padStart(5, '0')}.arrow`));
      const table = readTable(shard.path);
      assert.equal(table.schema.metadata.get('virnucpro.format'), TABLES.frames.format);
      assert.equal(table.schema.metadata.get('virnucpro.version'), String(TABLES.frames.version));
      assert.equal(table.numRows, shard.rows);
      assert.equal(shard.rows, i < out.shards.length - 1 ? 50 : nucleotide.length - 50 * i);
      const marker = await readValidMarker(shard.path);
      assert.deepEqual(marker && [marker.rows, marker.bytes, marker.sha256], [shard.rows, shard.bytes, shard.sha256]);
      for (const row of table) {
        rows.push([row.frame_id, row.nucleotide, row.protein]);
        recordIndexes.push(row.record_index);
        chunkIndexes.push(row.chunk_index);
      }
    }
    assert.deepEqual(rows, nucleotide.map(([id, dna], i) => [id, dna, protein[i][1]]));
    // record_index follows the record named in the frame id (kp_read_N is record N-1).
    assert.deepEqual(recordIndexes, rows.map(([id]) => Number(/^kp_read_(\d+)_chunk/.exec(id)?.[1]) - 1));
    // chunk_index is the 0-based chunk k-1 of the frame id's `_chunk_{k}`.
    assert.deepEqual(chunkIndexes, rows.map(([id]) => Number(/_chunk_(\d+)[FR][123]$/.exec(id)?.[1]) - 1));
    assert.ok(chunkIndexes.some((k) => k > 0));

    const records = readTable(out.records.path);
    assert.equal(records.schema.metadata.get('virnucpro.format'), 'virnucpro.records');
    assert.equal(records.numRows, 150);
    assert.equal(out.records.rows, 150);
    const first = records.get(0)!;
    assert.equal(first.record_id, 'kp_read_1');
    assert.equal(Number(first.length), out.stats.bases - [...records].slice(1).reduce((s, r) => s + Number(r.length), 0));
    assert.equal([...records].reduce((s, r) => s + r.chunks, 0), out.stats.chunks);
    assert.ok(await readValidMarker(out.records.path));
    assert.equal(out.idMap, undefined);
  });

  it('keeps shards that are already complete and identical, rewrites damaged ones', async () => {
    const input = { input: fixture('klebsiella_reads.fa.xz'), expectedLength: 300, workDir: tmp.dir, shardFrames: 100 };
    const first = await prepareReads(input);
    assert.equal(first.reusedShards, 0);
    const modified = first.shards.map((s) => statSync(s.path).mtimeMs);

    const second = await prepareReads(input);
    assert.equal(second.reusedShards, first.shards.length);
    assert.deepEqual(second.shards, first.shards);
    assert.deepEqual(second.shards.map((s) => statSync(s.path).mtimeMs), modified);

    appendFileSync(first.shards[1].path, 'x');
    const third = await prepareReads(input);
    assert.equal(third.reusedShards, first.shards.length - 1);
    assert.deepEqual(third.shards, first.shards);
    assert.ok(await readValidMarker(first.shards[1].path));
  });

  it('writes an id map when duplicate ids were renamed, and fails on input without any sequence', async () => {
    const dups = join(tmp.dir, 'dups.fa');
    writeFileSync(dups, '>x\nATGAAATTTGGG\n>x\nATGAAATTTCCC\n');
    const out = await prepareReads({ input: dups, expectedLength: 300, workDir: join(tmp.dir, 'work') });
    assert.equal(out.idMap?.rows, 1);
    assert.equal(readFileSync(out.idMap!.path, 'utf8'), 'record_number\toriginal_id\tused_id\n2\tx\tx_2\n');
    const ids = [...readTable(out.shards[0].path)].map((r) => r.frame_id as string);
    assert.ok(ids.includes('x_chunk_1F1') && ids.includes('x_2_chunk_1F1'));

    const empty = join(tmp.dir, 'empty.fa');
    writeFileSync(empty, '>a\n\n>b\n');
    await assert.rejects(prepareReads({ input: empty, expectedLength: 300, workDir: join(tmp.dir, 'w2') }), ReadInputError);
  });

  it('splits the frames of one chunk across shards when a shard fills up', async () => {
    const input = join(tmp.dir, 'one.fa');
    writeFileSync(input, '>one\nATGAAATTT\n');
    const out = await prepareReads({ input, expectedLength: 300, workDir: join(tmp.dir, 'w'), shardFrames: 2 });
    const ids = out.shards.map((s) => [...readTable(s.path)].map((r) => r.frame_id as string));
    assert.deepEqual(ids, [['one_chunk_1F1', 'one_chunk_1F3'], ['one_chunk_1R1', 'one_chunk_1R2'], ['one_chunk_1R3']]);
  });

  it('ends shards of the size it chose in a finer tail, and keeps a size the user gave exactly', async () => {
    // 'GCT' repeats are stop-free in all six frames: 9,000 reads of 500 bp give 54,000 frames.
    const input = join(tmp.dir, 'many.fa');
    writeFileSync(input, Array.from({ length: 9_000 }, (_, i) => `>r${i}\n${'GCT'.repeat(167).slice(0, 500)}\n`).join(''));
    const chosen = await prepareReads({ input, expectedLength: 500, workDir: join(tmp.dir, 'chosen') });
    const exact = await prepareReads({ input, expectedLength: 500, workDir: join(tmp.dir, 'exact'), shardFrames: MIN_SHARD_FRAMES });
    assert.equal(chosen.stats.frames, 54_000);
    const rows = (out: typeof chosen) => out.shards.map((s) => s.rows);
    assert.deepEqual(rows(chosen), shardSizes(54_000, MIN_SHARD_FRAMES), 'full shards, then the tail');
    assert.deepEqual(rows(chosen).slice(-3), [TAIL_MIN_FRAMES, TAIL_MIN_FRAMES, TAIL_MIN_FRAMES]);
    assert.deepEqual(rows(exact), [...Array(10).fill(5_000), 4_000], 'a given size is kept');
    const ids = (out: typeof chosen) => out.shards.flatMap((s) => [...readTable(s.path)].map((r) => `${r.frame_id}/${r.record_index}/${r.chunk_index}`));
    assert.deepEqual(ids(chosen), ids(exact), 'the same frames in the same order');
  });

  it('cuts any frame count into full shards and a tail that shrinks to its smallest size', () => {
    for (const size of [5_000, 12_345, 50_000]) {
      const tail = tailPlan(size);
      assert.ok(tail.every((s, i) => s < size && s >= TAIL_MIN_FRAMES && (i === 0 || s <= tail[i - 1])), `tail of ${size}: ${tail}`);
      for (const frames of [0, 1, 999, 4_321, 38_000, 250_000, 1_234_567]) {
        const sizes = shardSizes(frames, size);
        assert.equal(sizes.reduce((a, b) => a + b, 0), frames, `${frames} frames in shards of ${size}`);
        assert.ok(sizes.every((s) => s > 0 && s <= size));
      }
    }
    assert.deepEqual(shardSizes(1_000_000, 5_000).slice(0, 3), [5_000, 5_000, 5_000]);
  });

  it('validates its input', async () => {
    await assert.rejects(prepareReads({ input: fixture('viral_mix.fa'), expectedLength: 0, workDir: tmp.dir }));
    await assert.rejects(prepareReads({ input: fixture('viral_mix.fa'), expectedLength: 300, workDir: tmp.dir, shardFrames: 0 }));
  });
});
