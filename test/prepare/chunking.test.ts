import assert from 'node:assert/strict';
import { chunkName, chunkSpans } from '../../activities/prepare/chunking';

const spans = (length: number, size: number) => [...chunkSpans(length, size)].map((s) => [s.start, s.end]);

describe('prepare: chunking to the expected length', () => {
  it('keeps a sequence no longer than C whole, unpadded', () => {
    assert.deepEqual(spans(1, 500), [[0, 1]]);
    assert.deepEqual(spans(299, 300), [[0, 299]]);
    assert.deepEqual(spans(500, 500), [[0, 500]]);
  });

  it('gives no chunk for an empty sequence (the original divides by zero)', () => {
    assert.deepEqual(spans(0, 300), []);
  });

  it('reproduces the uneven-overlap quirk: L=501, C=500 gives [0,500) and [250,501)', () => {
    assert.deepEqual(spans(501, 500), [
      [0, 500],
      [250, 501],
    ]);
  });

  it('spreads the overlap q+1 for the first m gaps and q for the rest when m <= n-1', () => {
    // L=1498, C=500: n=3, R=2, q=0, m=2 = n-1 -> both gaps shift by 1: starts 0, 499, 998.
    assert.deepEqual(spans(1498, 500), [
      [0, 500],
      [499, 999],
      [998, 1498],
    ]);
    // L=2996, C=300: n=10, R=4, q=0, m=4 -> gaps 1-4 shift by 1, gaps 5-9 by 0.
    assert.deepEqual(
      spans(2996, 300).map(([s]) => s),
      [0, 299, 598, 897, 1196, 1496, 1796, 2096, 2396, 2696],
    );
  });

  it('holds the formula invariants for every length up to 4 chunks', () => {
    for (const size of [300, 500]) {
      for (let length = 1; length <= 4 * size + 1; length++) {
        const chunks = [...chunkSpans(length, size)];
        const n = Math.ceil(length / size);
        const overlap = n * size - length;
        const q = Math.floor(overlap / n);
        const quirk = overlap - q * (n - 1) > n - 1;
        assert.equal(chunks.length, n, `L=${length}`);
        assert.deepEqual(chunks.map((c) => c.k), Array.from({ length: n }, (_, i) => i + 1));
        assert.equal(chunks[0].start, 0);
        let previousShift = Infinity;
        for (let k = 1; k < n; k++) {
          const shift = chunks[k - 1].start + size - chunks[k].start;
          assert.ok(shift === q || shift === q + 1, `L=${length} gap ${k} shifts ${shift}`);
          assert.ok(shift <= previousShift, `L=${length}: the q+1 shifts come first`);
          previousShift = shift;
        }
        const last = chunks[n - 1];
        assert.equal(last.end, length, `L=${length} must reach the end`);
        const lastLength = last.end - last.start;
        if (n > 1) assert.equal(lastLength < size, quirk, `L=${length}: short last chunk only in the quirk case`);
        for (const c of chunks.slice(0, -1)) assert.equal(c.end - c.start, size);
      }
    }
  });

  it('names chunks {id}_chunk_{k}', () => {
    assert.equal(chunkName('NC_001416.1', 3), 'NC_001416.1_chunk_3');
  });

  it('rejects a chunk size that is not a positive integer', () => {
    assert.throws(() => [...chunkSpans(10, 0)], RangeError);
  });
});
