// `virnucpro predict` options: the fork's command line (virnucpro-broad `predict`), plus what this
// implementation adds. Options of the fork that tuned machinery we no longer have are accepted
// with a one-line notice, so existing scripts keep working.
import * as path from 'node:path';
import { z } from 'zod';
import { commonShape, UsageError, type CommandSpec, type OptionSpec } from '../args';
import { MAX_SHARD_FRAMES, MIN_SHARD_FRAMES, SHARDS_PER_RUN } from '../../activities/prepare/shard-size';

/** Fork options that no longer mean anything here, and why. */
export const OBSOLETE_OPTIONS: Array<OptionSpec & { why: string }> = [
  { long: 'batch-size', short: 'b', value: 'N', help: 'ignored (fork option)', why: 'batches are planned by token budget on each device' },
  { long: 'num-workers', short: 'w', value: 'N', help: 'ignored (fork option)', why: 'shards are read on the runtime’s own prefetch thread' },
  { long: 'dnabert-batch-size', value: 'N', help: 'ignored (fork option)', why: 'DNABERT-S batches are packed by token budget' },
  { long: 'esm-batch-size', value: 'N', help: 'ignored (fork option; see --token-budget)', why: 'use --token-budget to cap ESM-2 tokens per batch' },
  { long: 'threads', short: 't', value: 'N', help: 'ignored (fork option)', why: 'translation is streamed in one pass' },
  { long: 'parallel', help: 'ignored (fork option)', why: 'every selected device is always used' },
  { long: 'persistent-models', help: 'ignored (fork option)', why: 'models always stay resident in one runtime per device' },
  { long: 'cuda-streams', help: 'ignored (fork option)', why: 'the runtime overlaps data preparation and compute itself' },
  { long: 'dataloader-workers', value: 'N', help: 'ignored (fork option)', why: 'there are no DataLoader workers' },
  { long: 'v1-fallback', help: 'ignored (fork option)', why: 'there is a single code path' },
  { long: 'v1-attention', help: 'ignored (fork option)', why: 'attention is chosen by the runtime' },
];

const obsoleteShape = Object.fromEntries(
  OBSOLETE_OPTIONS.map((o) => [o.long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), z.union([z.string(), z.boolean()]).optional()]),
);

const schema = z.object({
  _: z.tuple([z.string().min(1)]),
  modelType: z.enum(['300', '500', 'custom']).default('500'),
  modelPath: z.string().min(1).optional(),
  expectedLength: z.coerce.number().int().min(3).max(1_000_000).optional(),
  outputDir: z.string().min(1).optional(),
  device: z.string().regex(/^(auto|cpu|cuda|cuda:\d+|\d+)$/, 'must be auto, cpu, cuda, cuda:N or N').default('auto'),
  gpus: z.string().regex(/^\d+(,\d+)*$/, 'must be a comma-separated list of GPU ids, e.g. 0,1').optional(),
  resume: z.boolean().default(false),
  force: z.boolean().default(false),
  keepIntermediate: z.boolean().default(false),
  progress: z.boolean().default(true),
  syntheticWeights: z.enum(['tiny', 'full']).optional(),
  esm2Weights: z.string().min(1).optional(),
  dnabertWeights: z.string().min(1).optional(),
  shardFrames: z.coerce.number().int().min(1).max(10_000_000).optional(),
  tokenBudget: z.coerce.number().int().positive().optional(),
  embeddings: z.boolean().default(false),
  precision: z.enum(['bf16', 'fp8', 'fp32']).default('bf16'),
  workers: z.boolean().default(true),
  workDir: z.string().min(1).optional(),
  ...obsoleteShape,
  ...commonShape,
});
export type PredictOptions = z.infer<typeof schema>;

export const predictSpec: CommandSpec<PredictOptions> = {
  name: 'virnucpro predict',
  summary: 'Classify DNA reads as viral or not with VirNucPro (DNABERT-S + ESM-2 + the VirNucPro classifier).',
  positionals: [{ name: 'INPUT', help: 'reads: FASTA or FASTQ, plain or .gz/.bz2/.xz' }],
  options: [
    { long: 'model-type', short: 'm', value: '300|500|custom', help: 'published classifier for 300 or 500 bp chunks, or custom with -p (default 500)' },
    { long: 'model-path', short: 'p', value: 'FILE', help: 'classifier .pth (default: <weights>/<m>_model.pth; required with -m custom)' },
    { long: 'expected-length', short: 'e', value: 'N', help: 'chunk length (default: the model type, 500 for custom)' },
    { long: 'output-dir', short: 'o', value: 'DIR', help: 'where results go (default: <input name>_predictions)' },
    { long: 'device', short: 'd', value: 'DEV', help: 'auto | cpu | cuda | cuda:N | N (default auto: every GPU, else the CPU)' },
    { long: 'gpus', value: 'LIST', help: 'GPU ids to use, e.g. 0,1 (overrides --device)' },
    { long: 'resume', help: 'continue in an existing output folder, reusing every completed step' },
    { long: 'force', short: 'f', help: 'start over: replace this folder’s results and intermediate files' },
    { long: 'keep-intermediate', short: 'k', help: 'keep the frame shards and shard results (default: removed after success)' },
    { long: 'progress', help: 'show progress (default; --no-progress to hide)' },
    { long: 'synthetic-weights', value: 'tiny|full', help: 'random test weights instead of the real models (results are NOT biology)' },
    { long: 'esm2-weights', value: 'PATH', help: 'ESM-2 3B: fair-esm .pt file or Hugging Face folder (default: <weights>/esm2_t36_3B_UR50D[.pt])' },
    { long: 'dnabert-weights', value: 'DIR', help: 'DNABERT-S Hugging Face folder (default: <weights>/DNABERT-S)' },
    { long: 'shard-frames', value: 'N', help: `frames per shard, the unit a GPU computes and the cache keeps (default: about ${SHARDS_PER_RUN} shards per input, ${MIN_SHARD_FRAMES}-${MAX_SHARD_FRAMES} frames each, the last ones finer)` },
    { long: 'token-budget', value: 'N', help: 'ESM-2 tokens per batch (default: tuned per device)' },
    {
      long: 'precision',
      value: 'bf16|fp8|fp32',
      help: 'ESM-2 on GPUs: bf16 (default; DNABERT-S fp32 with TF32), fp8 (opt-in: linear layers in FP8, GPUs of compute capability >= 8.9; parity not yet proven) or fp32 (fp32 throughout, as the original, about 12x slower). CPUs always run fp32',
    },
    { long: 'embeddings', help: 'also keep the DNABERT-S and ESM-2 embeddings in the shard results (implies -k)' },
    { long: 'work-dir', value: 'DIR', help: 'intermediate files and the run log (default <output-dir>/.virnucpro)' },
    { long: 'workers', help: 'run workers in this process unless `virnucpro worker` already serves the queues (default; --no-workers: never)' },
    ...OBSOLETE_OPTIONS.map(({ why: _, ...option }) => option),
  ],
  epilog: [
    'Weights are looked up in $VIRNUCPRO_WEIGHTS (default <repo>/weights): 300_model.pth, 500_model.pth,',
    'esm2_t36_3B_UR50D.pt (or the Hugging Face folder esm2_t36_3B_UR50D/) and DNABERT-S/.',
    'Running the same command again attaches to the same run (or reuses its completed steps).',
    'Exit status: 0 success, 1 failure, 2 bad input (options, input file, weights, output folder).',
  ].join('\n'),
  schema,
};

/** The runtime's precision: fp32 on CPUs (like the original) and with `--precision fp32`; null
 *  (the runtime's fast path: ESM-2 bf16, DNABERT-S fp32 with TF32 matmuls on CUDA) for bf16; fp8
 *  only on GPUs, never emulated on a CPU. */
export function runtimePrecision(cpuOnly: boolean, precision: 'bf16' | 'fp8' | 'fp32'): 'fp8' | 'fp32' | null {
  if (cpuOnly && precision === 'fp8') {
    throw new UsageError('--precision fp8 needs a GPU with FP8 matmuls (compute capability >= 8.9: Ada, H100, H200); no GPU was found or selected');
  }
  if (cpuOnly || precision === 'fp32') return 'fp32';
  return precision === 'fp8' ? 'fp8' : null;
}

/** The input file's name without compression and format suffixes: `S01.fastq.gz` -> `S01`. */
export function sampleName(input: string): string {
  return path.basename(input).replace(/\.(gz|bz2|xz)$/i, '').replace(/\.[^.]*$/, '');
}

export function defaultOutputDir(input: string): string {
  return `${sampleName(input)}_predictions`;
}
