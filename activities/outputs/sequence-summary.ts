// sequence_summary.tsv: what the original never gives, one line per input record. A record is
// called `virus` when at least half of its scored chunks are viral by the original's chunk rule
// (ties go to virus, as the chunk rule's `>=` does); `no_frames` when no chunk kept a frame.
import type { ChunkCall } from './chunk-calls';
import type { FrameScore, InputRecord } from './tables';
import { formatFloat32 } from './float32-repr';

export const SUMMARY_HEADER = [
  'record_id',
  'original_id',
  'length',
  'chunks',
  'chunks_scored',
  'frames_scored',
  'max_virus_score',
  'mean_virus_score',
  'virus_chunk_fraction',
  'call',
].join('\t');

export type RecordCall = 'virus' | 'others' | 'no_frames';

interface Tally {
  frames: number;
  maxVirus: number;
  sumVirus: number;
  chunksScored: number;
  virusChunks: number;
}

export class SequenceSummary {
  private readonly byIndex = new Map<number, Tally>();

  constructor(private readonly records: InputRecord[]) {
    for (const record of records) {
      this.byIndex.set(record.recordIndex, { frames: 0, maxVirus: -Infinity, sumVirus: 0, chunksScored: 0, virusChunks: 0 });
    }
  }

  private tally(recordIndex: number, what: string): Tally {
    const tally = this.byIndex.get(recordIndex);
    if (!tally) throw new Error(`${what} belongs to record_index ${recordIndex}, which is not in the records table`);
    return tally;
  }

  addFrame({ frameId, recordIndex, scoreVirus }: FrameScore): void {
    const tally = this.tally(recordIndex, `frame ${frameId}`);
    tally.frames += 1;
    tally.sumVirus += scoreVirus;
    if (scoreVirus > tally.maxVirus) tally.maxVirus = scoreVirus;
  }

  addChunk(call: ChunkCall): void {
    const tally = this.tally(call.recordIndex, `chunk ${call.chunkId}`);
    tally.chunksScored += 1;
    if (call.isVirus) tally.virusChunks += 1;
  }

  static callOf(chunksScored: number, virusChunks: number): RecordCall {
    if (chunksScored === 0) return 'no_frames';
    return virusChunks * 2 >= chunksScored ? 'virus' : 'others';
  }

  /** Rows in input order, plus the number of records per call. */
  rows(): { lines: string[]; calls: Record<RecordCall, number> } {
    const calls: Record<RecordCall, number> = { virus: 0, others: 0, no_frames: 0 };
    const lines = this.records.map((record) => {
      const t = this.byIndex.get(record.recordIndex)!;
      const call = SequenceSummary.callOf(t.chunksScored, t.virusChunks);
      calls[call] += 1;
      const scored = t.frames > 0;
      return [
        record.recordId,
        record.originalId,
        String(record.length),
        String(record.chunks),
        String(t.chunksScored),
        String(t.frames),
        scored ? formatFloat32(t.maxVirus) : 'NA',
        scored ? formatFloat32(t.sumVirus / t.frames) : 'NA',
        t.chunksScored > 0 ? formatFloat32(t.virusChunks / t.chunksScored) : 'NA',
        call,
      ].join('\t');
    });
    return { lines, calls };
  }
}
