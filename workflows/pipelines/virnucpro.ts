// The VirNucPro prediction pipeline: cut + translate the reads into frame shards (cpu), embed and
// classify every shard on whichever device is free (gpu, scattered), then write the original's
// result files plus our summary (cpu, gathered). Run settings that change results are step
// params, so they are part of every step's cache key: a rerun with other weights recomputes.
import { definePipeline } from '../dsl/define';
import type { Dag } from '../dsl/types';
import type { LoadArgs } from '../../activities/gpu/protocol';
import type { LegacyRun } from '../../activities/legacy/sources';

export interface VirnucproSettings {
  /** Chunk length C (300 or 500 for the published models). */
  expectedLength: number;
  /** Frames per shard (null: sized for the input, activities/prepare/shard-size.ts). */
  shardFrames: number | null;
  /** What every device's runtime loads and how it computes (the runtime protocol's `load`). */
  model: LoadArgs;
  /** Size and modification time of each weight file used, so replacing one recomputes. */
  weightFiles: Array<{ path: string; bytes: number; modified: number }>;
  /** Also keep the 768 + 2560 embeddings in the shard results. */
  embeddings: boolean;
  /** Where the result files go. */
  outDir: string;
  /** Earlier runs of the original or the fork whose embeddings are imported (predict --resume). */
  legacy: LegacyRun[];
}

/** For drawing the pipeline (`virnucpro dag virnucpro`); `predict` builds its own. */
export const defaultVirnucproSettings: VirnucproSettings = {
  expectedLength: 500,
  shardFrames: null,
  model: {},
  weightFiles: [],
  embeddings: false,
  outDir: 'virnucpro-output',
  legacy: [],
};

export function virnucproPipeline(settings: VirnucproSettings): Dag {
  const importing = settings.legacy.length > 0;
  // With earlier runs' files, the shards go through the import step first: it fills in the
  // embeddings those runs computed and scores the shards that need no model at all.
  const legacyImport = {
    implementation: 'virnucpro.import-legacy',
    resource: 'cpu' as const,
    inputs: { shards: { from: 'prepare.shards', type: 'frames[]' } },
    outputs: { shards: 'frames[]', imported: 'imported-result[]', report: 'legacy.report' },
    params: {
      runs: settings.legacy,
      expectedLength: settings.expectedLength,
      classifier: settings.model.classifier ?? null,
      synthetic: settings.model.synthetic ?? null,
      embeddings: settings.embeddings,
      canCompute: Boolean(settings.model.synthetic || (settings.model.esm2 && settings.model.dnabert)),
    },
    retry: { maximumAttempts: 3 },
    timeouts: { startToClose: '12h', heartbeat: '60s' },
  };
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
        // Steps heartbeat at least every 10 s while they run: a lost worker is noticed in a minute.
        timeouts: { startToClose: '12h', heartbeat: '60s' },
      },
      ...(importing ? { import: legacyImport } : {}),
      embed: {
        implementation: 'gpu.embed-classify',
        // 3: Inductor's deterministic mode and budgets from total memory (results of version 2
        // runtimes could differ in the last bits); 2: DNABERT-S fp32 with TF32 matmuls (was bf16).
        version: '3',
        resource: 'gpu',
        inputs: { shard: { from: importing ? 'import.shards' : 'prepare.shards', type: 'frames', mode: 'scatter' } },
        outputs: { result: 'shard.result' },
        params: { model: settings.model, weightFiles: settings.weightFiles, embeddings: settings.embeddings },
        // A device gets several shards per task, sized to its share of the work left.
        group: true,
        retry: { maximumAttempts: 4 },
        // The step heartbeats every few seconds, also while models load or its shard waits its
        // turn: a worker that is gone is noticed within a minute and its shard moves.
        timeouts: { startToClose: '6h', heartbeat: '60s' },
      },
      write: {
        implementation: 'virnucpro.write-outputs',
        resource: 'cpu',
        inputs: {
          records: { from: 'prepare.records', type: 'records' },
          idMap: { from: 'prepare.idMap', type: 'idmap' },
          results: { from: 'embed.result', type: 'shard.result[]', mode: 'gather' },
          ...(importing ? { imported: { from: 'import.imported', type: 'imported-result[]' } } : {}),
        },
        outputs: { summary: 'virnucpro.outputs' },
        params: { outDir: settings.outDir, synthetic: settings.model.synthetic ?? null },
        timeouts: { startToClose: '6h', heartbeat: '60s' },
        cache: false,
      },
    },
    outputs: { summary: 'write.summary', stats: 'prepare.stats', ...(importing ? { legacy: 'import.report' } : {}) },
  });
}
