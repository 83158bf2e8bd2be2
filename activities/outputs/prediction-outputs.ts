// Writes the run's result files from the records table and the ordered shard results:
// prediction_results.txt and prediction_results_highestscore.csv exactly as the original
// VirNucPro writes them (docs/outputs.md), and our sequence_summary.tsv.
import * as path from 'node:path';
import { ChunkCalls, csvField } from './chunk-calls';
import { formatFloat32 } from './float32-repr';
import { RecordCall, SequenceSummary, SUMMARY_HEADER } from './sequence-summary';
import { readFrameScores, readRecords } from './tables';
import { TextFileWriter, WrittenFile } from './text-file-writer';

export const PREDICTION_FILE = 'prediction_results.txt';
export const HIGHEST_SCORE_FILE = 'prediction_results_highestscore.csv';
export const SUMMARY_FILE = 'sequence_summary.tsv';

export type SyntheticWeights = 'tiny' | 'full' | null;

/** First line of every output of a run with synthetic weights, so nobody mistakes it for biology. */
export function syntheticBanner(synthetic: Exclude<SyntheticWeights, null>): string {
  return `# SYNTHETIC WEIGHTS (${synthetic}): these scores come from random test weights, not from the VirNucPro, ESM-2 or DNABERT-S models. Do not use them for any biological conclusion.`;
}

export interface PredictionOutputsRequest {
  recordsPath: string;
  /** Shard result files in shard order. */
  resultPaths: string[];
  outDir: string;
  synthetic: SyntheticWeights;
}

/** Bins of the frames' P(virus) histogram in the run report: [0, 0.05), ..., [0.95, 1]. */
export const SCORE_BINS = 20;

export interface PredictionOutputs {
  files: WrittenFile[];
  frames: number;
  chunks: number;
  virusChunks: number;
  records: number;
  calls: Record<RecordCall, number>;
  /** Frames per P(virus) bin (SCORE_BINS bins). */
  scoreHistogram: number[];
}

/** Writes one file under its temporary name; `published` later moves them all into place. */
class OutputSet {
  private readonly finished: TextFileWriter[] = [];
  private open: TextFileWriter | null = null;

  constructor(private readonly synthetic: SyntheticWeights) {}

  async write<T>(file: string, body: (w: TextFileWriter) => Promise<T>): Promise<{ result: T; file: WrittenFile }> {
    const writer = await TextFileWriter.open(file);
    this.open = writer;
    if (this.synthetic) await writer.line(syntheticBanner(this.synthetic), false);
    const result = await body(writer);
    const written = await writer.finish();
    this.open = null;
    this.finished.push(writer);
    return { result, file: written };
  }

  async publish(): Promise<void> {
    for (const writer of this.finished) await writer.publish();
  }

  async abandon(): Promise<void> {
    for (const writer of [...this.finished, ...(this.open ? [this.open] : [])]) await writer.abandon();
  }
}

export async function writePredictionOutputs(request: PredictionOutputsRequest): Promise<PredictionOutputs> {
  const outputs = new OutputSet(request.synthetic);
  try {
    const result = await writeAll(request, outputs);
    await outputs.publish();
    return result;
  } catch (error) {
    await outputs.abandon();
    throw error;
  }
}

async function writeAll(request: PredictionOutputsRequest, outputs: OutputSet): Promise<PredictionOutputs> {
  const records = await readRecords(request.recordsPath);
  const summary = new SequenceSummary(records);
  const chunkCalls = new ChunkCalls();

  const scoreHistogram = new Array<number>(SCORE_BINS).fill(0);
  const predictions = await outputs.write(path.join(request.outDir, PREDICTION_FILE), async (out) => {
    await out.line('Sequence_ID\tPrediction\tscore1\tscore2', false);
    let frames = 0;
    for (const resultPath of request.resultPaths) {
      for await (const frame of readFrameScores(resultPath, records)) {
        // torch.max picks the first of equal values, i.e. class 0 (others) on a tie
        const prediction = frame.scoreVirus > frame.scoreOthers ? 'virus' : 'others';
        await out.line(`${frame.frameId}\t${prediction}\t${formatFloat32(frame.scoreOthers)}\t${formatFloat32(frame.scoreVirus)}`);
        chunkCalls.add(frame);
        summary.addFrame(frame);
        scoreHistogram[Math.min(SCORE_BINS - 1, Math.max(0, Math.floor(frame.scoreVirus * SCORE_BINS)))] += 1;
        frames += 1;
      }
    }
    return frames;
  });

  const calls = chunkCalls.sorted();
  const highest = await outputs.write(path.join(request.outDir, HIGHEST_SCORE_FILE), async (out) => {
    await out.line('Modified_ID\tIs_Virus', false);
    let virus = 0;
    for (const call of calls) {
      await out.line(`${csvField(call.chunkId)}\t${call.isVirus ? 'True' : 'False'}`);
      summary.addChunk(call);
      if (call.isVirus) virus += 1;
    }
    return virus;
  });

  const { lines, calls: recordCalls } = summary.rows();
  const summaryFile = await outputs.write(path.join(request.outDir, SUMMARY_FILE), async (out) => {
    await out.line(SUMMARY_HEADER, false);
    for (const line of lines) await out.line(line);
  });

  return {
    files: [predictions.file, highest.file, summaryFile.file],
    frames: predictions.result,
    chunks: calls.length,
    virusChunks: highest.result,
    records: records.length,
    calls: recordCalls,
    scoreHistogram,
  };
}
