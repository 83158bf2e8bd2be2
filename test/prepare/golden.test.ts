// Our translate output against the original VirNucPro's, byte for byte (see
// test/fixtures/prepare/README.md for how the golden files were made).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { translateFile } from '../../activities/prepare/translate-files';
import { fixture, scratch } from './fixtures';

const CASES: Array<[input: string, expectedLength: number]> = [
  ['viral_mix.fa', 300],
  ['viral_mix.fa', 500],
  ['klebsiella_reads.fa.xz', 300],
  ['klebsiella_reads.fa.xz', 500],
  ['klebsiella_reads.fa.bz2', 500],
  ['srr_reads.fastq.gz', 300],
];

describe('prepare: translate matches the original byte for byte', () => {
  for (const [input, length] of CASES) {
    it(`${input} with expected length ${length}`, async () => {
      const tmp = scratch();
      try {
        const { paths, stats } = await translateFile(fixture(input), length, tmp.dir);
        assert.ok(stats.frames > 0);
        for (const path of [paths.chunked, paths.nucleotide, paths.protein]) {
          const golden = gunzipSync(readFileSync(fixture(`golden/L${length}/${basename(path)}.gz`)));
          const ours = readFileSync(path);
          if (!ours.equals(golden)) {
            const at = ours.findIndex((b, i) => b !== golden[i]);
            assert.fail(`${basename(path)} differs at byte ${at}: ours "${ours.subarray(at, at + 40)}" vs "${golden.subarray(at, at + 40)}"`);
          }
        }
      } finally {
        tmp.remove();
      }
    });
  }
});
