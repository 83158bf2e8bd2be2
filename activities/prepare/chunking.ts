/**
 * Cutting a sequence into reads of the expected length C exactly as the original's
 * `split_fasta_chunk` does (see docs: original pipeline, section 1). With n = ceil(L/C)
 * chunks and R = n*C - L bases of overlap to spread, q = floor(R/n) and
 * m = R - q*(n-1): the first m gaps shift back by q+1, the rest by q.
 * The original builds its shift list as [q+1]*m + [q]*(n-1-m); when m > n-1 the second
 * part is empty and every gap shifts by q+1, so the last chunk ends short of C
 * (L=501, C=500 gives [0,500) and [250,501)). That quirk is reproduced on purpose.
 */

export interface ChunkSpan {
  /** 1-based chunk number, as in `{id}_chunk_{k}`. */
  k: number;
  start: number;
  end: number;
}

/** Spans of the chunks of a sequence of `length` bases; none for an empty sequence. */
export function* chunkSpans(length: number, size: number): Generator<ChunkSpan> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
  if (length <= 0) return;
  const n = Math.ceil(length / size);
  const overlap = n * size - length;
  const q = Math.floor(overlap / n);
  const m = overlap - q * (n - 1);
  let shifted = 0;
  for (let k = 0; k < n; k++) {
    const start = k * size - shifted;
    yield { k: k + 1, start, end: Math.min(start + size, length) };
    shifted += k < m ? q + 1 : q;
  }
}

/** `{id}_chunk_{k}`: the chunk's name in every file and frame id. */
export function chunkName(recordId: string, k: number): string {
  return `${recordId}_chunk_${k}`;
}
