import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { formatFloat32 } from '../../activities/outputs/float32-repr';
import { compareCodePoints } from '../../activities/outputs/chunk-calls';
import {
  HIGHEST_SCORE_FILE,
  PREDICTION_FILE,
  SUMMARY_FILE,
  writePredictionOutputs,
} from '../../activities/outputs/prediction-outputs';
import { readFrameScores } from '../../activities/outputs/tables';
import { TABLES } from '../../activities/formats';
import { RecordRow, ScoreRow, writeRecordsTable, writeResultsTable } from './arrow-fixtures';
import { python, repoRoot } from './python';

const fixtures = path.join(repoRoot, 'test', 'outputs', 'fixtures');

/** Deterministic scores: softmax of two float32 logits, with exact ties and extreme values mixed in. */
function scoresFor(count: number, seed: number): Array<[number, number]> {
  let state = seed;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return Array.from({ length: count }, () => {
    const pick = next();
    if (pick < 0.05) return [0.5, 0.5];
    const spread = pick < 0.2 ? 40 : 6;
    const a = Math.fround((next() - 0.5) * spread);
    const b = Math.fround((next() - 0.5) * spread);
    const m = Math.max(a, b);
    const ea = Math.fround(Math.exp(a - m));
    const eb = Math.fround(Math.exp(b - m));
    return [Math.fround(ea / (ea + eb)), Math.fround(eb / (ea + eb))];
  });
}

const FRAMES = ['F1', 'F2', 'F3', 'R1', 'R2', 'R3'];

/** Records with ids chosen to exercise ordering (case, accents, characters above U+FFFF) and parsing. */
function scenario(): { records: RecordRow[]; shards: ScoreRow[][] } {
  const ids = ['zeta', 'Alpha', 'read_chunk_7', 'caf\u00e9', '\u{1D538}astral', '\uFF21wide', 'alpha10', 'alpha9', 'empty'];
  const records = ids.map((id, i) => ({ recordId: id, originalId: i === 1 ? 'Alpha' : id, length: 300 + 97 * i, chunks: 1 + (i % 3) }));
  const frames: Array<Pick<ScoreRow, 'frameId' | 'recordIndex' | 'chunkIndex'>> = [];
  for (const [recordIndex, record] of records.entries()) {
    if (record.recordId === 'empty') continue; // a record none of whose frames survived
    for (let k = 1; k <= record.chunks; k++) {
      for (const [f, frame] of FRAMES.entries()) {
        if ((k + f + record.length) % 3 !== 0) frames.push({ frameId: `${record.recordId}_chunk_${k}${frame}`, recordIndex, chunkIndex: k - 1 });
      }
    }
  }
  const scores = scoresFor(frames.length, 42);
  const rows = frames.map((frame, i) => ({ ...frame, scoreOthers: scores[i][0], scoreVirus: scores[i][1] }));
  return { records, shards: [rows.slice(0, 20), rows.slice(20)] };
}

describe('outputs: float32 formatting', () => {
  it('prints every fixture value exactly as numpy str(np.float32(x)) does', () => {
    const fixture = JSON.parse(readFileSync(path.join(fixtures, 'float32_str.json'), 'utf8')) as { rows: Array<[number, string]> };
    const f32 = new Float32Array(1);
    const bits = new Uint32Array(f32.buffer);
    const wrong = fixture.rows.filter(([pattern, expected]) => {
      bits[0] = pattern;
      return formatFloat32(f32[0]) !== expected;
    });
    assert.ok(fixture.rows.length > 5000);
    assert.deepEqual(wrong, []);
  });

  it('orders strings as Python does (by code point)', () => {
    const words = ['b', 'B', '\uFF21', '\u{1D538}', 'a\u00e9', 'ab'];
    const byPython = JSON.parse(
      execFileSync(python, ['-c', 'import json,sys; print(json.dumps(sorted(json.loads(sys.argv[1]))))', JSON.stringify(words)], { encoding: 'utf8' }),
    );
    assert.deepEqual([...words].sort(compareCodePoints), byPython);
  });
});

describe('outputs: prediction files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'virnucpro-outputs-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function writeInputs(resultsVersion = TABLES.results.version): { recordsPath: string; resultPaths: string[] } {
    const { records, shards } = scenario();
    const recordsPath = path.join(dir, 'records.arrow');
    writeRecordsTable(recordsPath, records);
    const resultPaths = shards.map((rows, i) => {
      const file = path.join(dir, `results-${String(i).padStart(5, '0')}.arrow`);
      writeResultsTable(file, rows, resultsVersion);
      return file;
    });
    return { recordsPath, resultPaths };
  }

  it('writes byte for byte what the original would, and the summary by its rule', async () => {
    const { recordsPath, resultPaths } = writeInputs();
    const outDir = path.join(dir, 'out');
    const reference = path.join(dir, 'reference');
    for (const d of [outDir, reference]) execFileSync('mkdir', ['-p', d]);
    const result = await writePredictionOutputs({ recordsPath, resultPaths, outDir, synthetic: null });
    execFileSync(python, [path.join(fixtures, 'reference_outputs.py'), recordsPath, reference, ...resultPaths]);

    for (const name of [PREDICTION_FILE, HIGHEST_SCORE_FILE, SUMMARY_FILE]) {
      assert.equal(readFileSync(path.join(outDir, name), 'utf8'), readFileSync(path.join(reference, name), 'utf8'), name);
    }
    const lines = readFileSync(path.join(outDir, PREDICTION_FILE), 'utf8').trimEnd().split('\n');
    assert.equal(lines[0], 'Sequence_ID\tPrediction\tscore1\tscore2');
    assert.equal(result.frames, lines.length - 1);
    assert.equal(result.records, 9);
    assert.ok(lines.some((l) => /e-\d\d/.test(l)), 'the scenario includes scores printed in exponent form');
    assert.deepEqual(readdirSync(outDir).sort(), [PREDICTION_FILE, HIGHEST_SCORE_FILE, SUMMARY_FILE].sort());
    assert.equal(result.calls.no_frames, 1);
  });

  it('groups frames by the record and chunk they carry, not by their ids', async () => {
    // Frame ids the writer could not take apart: the chunk id is still the id minus its last
    // two characters (the original's Modified_ID), but record and chunk come from the columns.
    const recordsPath = path.join(dir, 'records.arrow');
    writeRecordsTable(recordsPath, [
      { recordId: 'a', length: 600, chunks: 2 },
      { recordId: 'b', length: 300, chunks: 1 },
    ]);
    const resultPath = path.join(dir, 'results-00000.arrow');
    writeResultsTable(resultPath, [
      { frameId: 'x-1F1', recordIndex: 0, chunkIndex: 0, scoreOthers: 0.25, scoreVirus: 0.75 },
      { frameId: 'x-1R2', recordIndex: 0, chunkIndex: 0, scoreOthers: 0.875, scoreVirus: 0.125 },
      { frameId: 'x-2F1', recordIndex: 0, chunkIndex: 1, scoreOthers: 0.875, scoreVirus: 0.125 },
      { frameId: 'y-1F3', recordIndex: 1, chunkIndex: 0, scoreOthers: 0.5, scoreVirus: 0.5 },
    ]);
    const result = await writePredictionOutputs({ recordsPath, resultPaths: [resultPath], outDir: dir, synthetic: null });
    assert.equal(readFileSync(path.join(dir, HIGHEST_SCORE_FILE), 'utf8'), 'Modified_ID\tIs_Virus\nx-1\tFalse\nx-2\tFalse\ny-1\tTrue\n');
    const summary = readFileSync(path.join(dir, SUMMARY_FILE), 'utf8').trimEnd().split('\n').slice(1).map((l) => l.split('\t'));
    assert.deepEqual(summary.map((f) => [f[0], f[4], f[5], f[9]]), [['a', '2', '3', 'others'], ['b', '1', '1', 'virus']]);
    assert.equal(result.chunks, 3);
  });

  it('reads shard results written before they carried record_index and chunk_index (version 1), to the same bytes', async () => {
    const current = writeInputs();
    const currentOut = mkdtempSync(path.join(dir, 'current-'));
    await writePredictionOutputs({ ...current, outDir: currentOut, synthetic: null });
    const older = writeInputs(1);
    const olderOut = mkdtempSync(path.join(dir, 'older-'));
    await writePredictionOutputs({ ...older, outDir: olderOut, synthetic: null });
    for (const name of [PREDICTION_FILE, HIGHEST_SCORE_FILE, SUMMARY_FILE]) {
      assert.equal(readFileSync(path.join(olderOut, name), 'utf8'), readFileSync(path.join(currentOut, name), 'utf8'), name);
    }

    // The runtime's fixture of a version 1 result (gpu-runtime/tests/fixtures/formats/README.md).
    const fixture = path.join(repoRoot, 'gpu-runtime', 'tests', 'fixtures', 'formats', 'results-v1.arrow');
    const records = [
      { recordIndex: 0, recordId: 'r1', originalId: 'r1', length: 600, chunks: 2 },
      { recordIndex: 1, recordId: 'r2_chunk_1', originalId: 'r2_chunk_1', length: 300, chunks: 1 },
    ];
    const frames = [];
    for await (const frame of readFrameScores(fixture, records)) frames.push(frame);
    assert.deepEqual(
      frames.map((f) => [f.frameId, f.recordIndex, f.chunkIndex, f.scoreVirus]),
      [['r1_chunk_1F1', 0, 0, 0.25], ['r1_chunk_2R2', 0, 1, 0.875], ['r2_chunk_1_chunk_1F3', 1, 0, 0.5]],
    );
    await assert.rejects(async () => {
      for await (const frame of readFrameScores(fixture, records.slice(0, 1))) void frame;
    }, /results-v1\.arrow: frame "r2_chunk_1_chunk_1F3" belongs to record "r2_chunk_1", which is not in the records table/);
  });

  it('starts every file with a loud banner when the weights were synthetic', async () => {
    const { recordsPath, resultPaths } = writeInputs();
    const result = await writePredictionOutputs({ recordsPath, resultPaths, outDir: dir, synthetic: 'tiny' });
    for (const file of result.files) {
      const [first, second] = readFileSync(file.path, 'utf8').split('\n');
      assert.match(first, /^# SYNTHETIC WEIGHTS \(tiny\): .*not from the VirNucPro/);
      assert.doesNotMatch(second, /^#/);
    }
  });
});

describe('outputs: a full disk', () => {
  let mountPoint: string | null = null;

  before(function () {
    // A real small filesystem: a 64 KiB tmpfs. Mounting needs root (CI containers run as root);
    // elsewhere the test is skipped rather than imitated.
    const candidate = mkdtempSync(path.join(tmpdir(), 'virnucpro-full-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', candidate], { stdio: 'pipe' });
      mountPoint = candidate;
    } catch {
      rmSync(candidate, { recursive: true, force: true });
      this.skip();
    }
  });
  after(() => {
    if (!mountPoint) return;
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it('fails with a clear ENOSPC message and leaves no partial output file', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'virnucpro-full-in-'));
    try {
      const records: RecordRow[] = [{ recordId: 'big', length: 500 * 3000, chunks: 3000 }];
      const rows: ScoreRow[] = scoresFor(12000, 7).map(([o, v], i) => ({
        frameId: `big_chunk_${Math.floor(i / 4) + 1}${FRAMES[i % 4]}`,
        recordIndex: 0,
        chunkIndex: Math.floor(i / 4),
        scoreOthers: o,
        scoreVirus: v,
      }));
      writeRecordsTable(path.join(work, 'records.arrow'), records);
      writeResultsTable(path.join(work, 'results-00000.arrow'), rows);
      await assert.rejects(
        writePredictionOutputs({
          recordsPath: path.join(work, 'records.arrow'),
          resultPaths: [path.join(work, 'results-00000.arrow')],
          outDir: mountPoint!,
          synthetic: null,
        }),
        (error: Error) => {
          assert.match(error.message, new RegExp(`cannot write ${mountPoint}/prediction_results.txt: the disk is full \\(ENOSPC\\)`));
          return true;
        },
      );
      assert.deepEqual(readdirSync(mountPoint!), []);
      assert.equal(existsSync(path.join(mountPoint!, PREDICTION_FILE)), false);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
