// The VirNucPro prediction pipeline: cut + translate the reads into frame shards (cpu), embed and
// classify every shard on whichever device is free (gpu, scattered), then write the original's
// result files plus our summary (cpu, gathered). Run settings that change results are step
// params, so they are part of every step's cache key: a rerun with other weights recomputes.
import { definePipeline } from '../dsl/define';
import type { Dag } from '../dsl/types';

export interface VirnucproSettings {
  /** Chunk length C (300 or 500 for the published models). */
  expectedLength: number;
  /** Frames per shard: one GPU task. */
  shardFrames: number;
  /** Weight files (null: the runtime's default for that model); ignored when synthetic. */
  esm2: string | null;
  dnabert: string | null;
  classifier: string | null;
  synthetic: 'tiny' | 'full' | null;
  dtype: 'bfloat16' | 'float32' | null;
  tokenBudget: number | null;
  /** Also keep the 768 + 2560 embeddings in the shard results. */
  embeddings: boolean;
  /** Where the result files go. */
  outDir: string;
}

export const defaultVirnucproSettings: VirnucproSettings = {
  expectedLength: 500,
  shardFrames: 50_000,
  esm2: null,
  dnabert: null,
  classifier: null,
  synthetic: null,
  dtype: null,
  tokenBudget: null,
  embeddings: false,
  outDir: 'virnucpro-output',
};

export function virnucproPipeline(settings: VirnucproSettings): Dag {
  return definePipeline({
    name: 'virnucpro',
    version: '1',
    description: 'VirNucPro: chunk + six-frame translate (cpu), DNABERT-S + ESM-2 + classifier per shard (gpu), result files (cpu)',
    inputs: { reads: 'reads-fingerprint' },
    processes: {
      prepare: {
        implementation: 'virnucpro.prepare',
        resource: 'cpu',
        inputs: { reads: { from: 'inputs.reads', type: 'reads-fingerprint' } },
        outputs: { shards: 'frames[]', records: 'records', idMap: 'idmap', reusedShards: 'count', stats: 'prepare.stats' },
        params: { expectedLength: settings.expectedLength, shardFrames: settings.shardFrames },
        // A bad input file does not improve on retry; the implementation says so (non-retryable).
        retry: { maximumAttempts: 3 },
        timeouts: { startToClose: '12h', heartbeat: '2m' },
      },
      embed: {
        implementation: 'gpu.embed-classify',
        // 2: DNABERT-S runs fp32 with TF32 matmuls on GPUs (was bf16), so GPU shard results
        // cached by version 1 are not reused.
        version: '2',
        resource: 'gpu',
        inputs: { shard: { from: 'prepare.shards', type: 'frames', mode: 'scatter' } },
        outputs: { result: 'shard.result' },
        params: {
          synthetic: settings.synthetic,
          esm2: settings.esm2,
          dnabert: settings.dnabert,
          classifier: settings.classifier,
          dtype: settings.dtype,
          tokenBudget: settings.tokenBudget,
          embeddings: settings.embeddings,
        },
        retry: { maximumAttempts: 4 },
        // Loading the full models can take minutes; the step heartbeats throughout.
        timeouts: { startToClose: '6h', heartbeat: '3m' },
      },
      write: {
        implementation: 'virnucpro.write-outputs',
        resource: 'cpu',
        inputs: {
          records: { from: 'prepare.records', type: 'records' },
          idMap: { from: 'prepare.idMap', type: 'idmap' },
          results: { from: 'embed.result', type: 'shard.result[]', mode: 'gather' },
        },
        outputs: { summary: 'virnucpro.outputs' },
        params: { outDir: settings.outDir, synthetic: settings.synthetic },
        timeouts: { startToClose: '6h', heartbeat: '5m' },
        cache: false,
      },
    },
    outputs: { summary: 'write.summary', stats: 'prepare.stats' },
  });
}
