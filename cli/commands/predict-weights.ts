// Which weight files a prediction uses. Real weights come from explicit options, the weights
// folder, then (ESM-2 and DNABERT-S) the Hugging Face and torch hub caches where the runtime
// looks; when any is missing the user is told exactly which files to put where. Synthetic
// weights fill in whatever was not given explicitly (and are announced loudly elsewhere).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { defaultPython } from '../../activities/gpu/runtime-process';
import { UsageError } from '../args';
import { packageRoot } from '../config';

export interface WeightPaths {
  esm2: string | null;
  dnabert: string | null;
  classifier: string | null;
}

export interface WeightRequest {
  modelType: '300' | '500' | 'custom';
  modelPath?: string;
  esm2Weights?: string;
  dnabertWeights?: string;
  synthetic?: 'tiny' | 'full';
  /** Earlier runs' embeddings may make ESM-2 and DNABERT-S unnecessary: missing ones are null. */
  embeddersOptional?: boolean;
}

export function weightsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.VIRNUCPRO_WEIGHTS ?? path.join(packageRoot, 'weights'));
}

const cacheAnswer = z.strictObject({ found: z.string().nullable(), searched: z.array(z.string()) });
const cachedWeights = z.strictObject({ esm2: cacheAnswer, dnabert: cacheAnswer });
export type CachedWeights = z.infer<typeof cachedWeights>;

/**
 * The ESM-2 and DNABERT-S weights in the standard caches: the runtime says where it looks
 * (gpu-runtime/virnucpro_runtime/weight_caches.py, declared once there) and what it finds.
 */
export function findCachedWeights(env: NodeJS.ProcessEnv = process.env): CachedWeights {
  const python = env.VIRNUCPRO_PYTHON ?? defaultPython();
  const found = spawnSync(python, ['-m', 'virnucpro_runtime', 'find-weights'], { encoding: 'utf8', env });
  if (found.error) throw new Error(`could not start ${python} to look for weights in the Hugging Face and torch hub caches: ${found.error.message}`);
  if (found.status !== 0) throw new Error(`looking for weights in the Hugging Face and torch hub caches failed: ${found.stderr.trim()}`);
  return cachedWeights.parse(JSON.parse(found.stdout));
}

function mustExist(file: string, option: string): string {
  const resolved = path.resolve(file);
  if (!existsSync(resolved)) throw new UsageError(`${option} ${file}: no such file or folder`);
  return resolved;
}

export function resolveWeights(request: WeightRequest, env: NodeJS.ProcessEnv = process.env): WeightPaths {
  if (request.modelType === 'custom' && !request.modelPath) throw new UsageError('--model-path is required with --model-type custom');
  const explicit: WeightPaths = {
    classifier: request.modelPath ? mustExist(request.modelPath, '--model-path') : null,
    esm2: request.esm2Weights ? mustExist(request.esm2Weights, '--esm2-weights') : null,
    dnabert: request.dnabertWeights ? mustExist(request.dnabertWeights, '--dnabert-weights') : null,
  };
  if (request.synthetic) return explicit;

  const dir = weightsDir(env);
  const missing: string[] = [];
  let inCaches: CachedWeights | null = null; // asked once, and only when the weights folder lacks something
  const find = (given: string | null, candidates: string[], what: string, cached: keyof CachedWeights | null, optional = false): string | null => {
    if (given) return given;
    const places = candidates.map((c) => path.join(dir, c));
    const found = places.find((c) => existsSync(c)) ?? (cached ? ((inCaches ??= findCachedWeights(env))[cached].found ?? undefined) : undefined);
    if (!found && !optional) missing.push(`${what}: ${[...places, ...(cached ? inCaches![cached].searched : [])].join(' or ')}`);
    return found ?? null;
  };
  const optional = request.embeddersOptional ?? false;
  const weights: WeightPaths = {
    classifier: find(explicit.classifier, [`${request.modelType}_model.pth`], `VirNucPro classifier (${request.modelType} bp, from the VirNucPro repository)`, null),
    esm2: find(explicit.esm2, ['esm2_t36_3B_UR50D.pt', 'esm2_t36_3B_UR50D'], 'ESM-2 3B (fair-esm esm2_t36_3B_UR50D.pt, or the Hugging Face facebook/esm2_t36_3B_UR50D folder)', 'esm2', optional),
    dnabert: find(explicit.dnabert, ['DNABERT-S'], 'DNABERT-S (the Hugging Face zhihan1996/DNABERT-S folder)', 'dnabert', optional),
  };
  if (missing.length > 0) {
    throw new UsageError(
      [
        'model weights not found:',
        ...missing.map((m) => `  - ${m}`),
        `Put them there (or set VIRNUCPRO_WEIGHTS, or pass -p/--esm2-weights/--dnabert-weights).`,
        'To try the pipeline without them, add --synthetic-weights tiny (random weights: the scores mean nothing).',
      ].join('\n'),
    );
  }
  return weights;
}

/**
 * Size and modification time of every weight file (the files directly inside a weights
 * folder): part of the embed step's cache key, so weights replaced in place are not served
 * stale shard results.
 */
export function weightFingerprints(weights: WeightPaths): Array<{ path: string; bytes: number; modified: number }> {
  const files = Object.values(weights)
    .filter((p): p is string => p !== null)
    .flatMap((p) => (statSync(p).isDirectory() ? readdirSync(p).sort().map((name) => path.join(p, name)) : [p]));
  return files
    .map((file) => ({ file, stat: statSync(file) }))
    .filter(({ stat }) => stat.isFile())
    .map(({ file, stat }) => ({ path: file, bytes: stat.size, modified: stat.mtimeMs }));
}
