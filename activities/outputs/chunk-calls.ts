// The original's per-chunk call (prediction_results_highestscore.csv): a chunk is viral when
// the highest P(virus) among its kept frames is at least the highest P(others). The original
// computes it with pandas (`groupby("Modified_ID")`), so rows come out sorted by Python string
// order of the id, i.e. by Unicode code point. Frames are grouped by the record and chunk they
// carry; the id is only printed.
import type { FrameScore } from './tables';

/** The original's `Modified_ID`: `Sequence_ID` minus its last two characters (the `F1`..`R3` frame suffix). */
export function chunkIdOf(frameId: string): string {
  return frameId.slice(0, -2);
}

/** Python's `str` ordering: by code point (JS `<` compares UTF-16 units, which differs above U+FFFF). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xSurrogate = x >= 0xd800 && x <= 0xdfff;
    const ySurrogate = y >= 0xd800 && y <= 0xdfff;
    if (xSurrogate !== ySurrogate) return xSurrogate ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

export interface ChunkCall {
  chunkId: string;
  recordIndex: number;
  maxOthers: number;
  maxVirus: number;
  isVirus: boolean;
}

export class ChunkCalls {
  // `${recordIndex}/${chunkIndex}` -> the chunk's best scores so far
  private readonly maxima = new Map<string, { chunkId: string; recordIndex: number; others: number; virus: number }>();

  add({ frameId, recordIndex, chunkIndex, scoreOthers, scoreVirus }: FrameScore): void {
    const key = `${recordIndex}/${chunkIndex}`;
    const seen = this.maxima.get(key);
    if (!seen) this.maxima.set(key, { chunkId: chunkIdOf(frameId), recordIndex, others: scoreOthers, virus: scoreVirus });
    else {
      // pandas' max skips NaN, as these comparisons do
      if (scoreOthers > seen.others || Number.isNaN(seen.others)) seen.others = scoreOthers;
      if (scoreVirus > seen.virus || Number.isNaN(seen.virus)) seen.virus = scoreVirus;
    }
  }

  /** One call per chunk, sorted as pandas sorts the group keys. */
  sorted(): ChunkCall[] {
    return [...this.maxima.values()]
      .sort((a, b) => compareCodePoints(a.chunkId, b.chunkId))
      .map((m) => ({ chunkId: m.chunkId, recordIndex: m.recordIndex, maxOthers: m.others, maxVirus: m.virus, isVirus: m.virus >= m.others }));
  }
}

/** A field as pandas' `to_csv(sep="\t")` writes it (csv.QUOTE_MINIMAL). */
export function csvField(text: string): string {
  return /[\t"\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
