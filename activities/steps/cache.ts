// Step-level caching (Nextflow's -resume). A step's outputs live in
// `<workDir>/<process>/<key>/` where the key hashes (process, implementation, version, params,
// input checksums); `_step.done` records the outputs once every file is complete. A later run
// with the same key reuses them only if every referenced file still matches its `.done` marker.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { JsonValue } from '../../workflows/dsl/types';
import { readValidMarker, writeFileAtomic } from '../files/atomic';
import { FileRef, fileRef } from './implementation';
import { STEP_MARKER_VERSION } from '../formats';

const STEP_MARKER = '_step.done';
/** Part of every key: bump when the key's recipe or the step layout changes. */
const CACHE_RECIPE = 'virnucpro-step-cache-1';

export interface KeyMaterial {
  process: string;
  implementation: string;
  version: string;
  params: Record<string, JsonValue>;
  inputs: Record<string, JsonValue>;
}

/** JSON with sorted keys, so equal values hash equally whatever the key order. */
function canonical(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** File references count by content: the same bytes at another path give the same key. */
function contentOnly(value: JsonValue): JsonValue {
  const asFile = fileRef.safeParse(value);
  if (asFile.success) return { sha256: asFile.data.sha256, rows: asFile.data.rows };
  if (Array.isArray(value)) return value.map(contentOnly);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, contentOnly(v)]));
  }
  return value;
}

export function cacheKey(material: KeyMaterial): string {
  const recipe = {
    recipe: CACHE_RECIPE,
    process: material.process,
    implementation: material.implementation,
    version: material.version,
    params: material.params,
    inputs: contentOnly(material.inputs),
  };
  return createHash('sha256').update(canonical(recipe)).digest('hex').slice(0, 32);
}

export function stepDirectory(workDir: string, process: string, key: string): string {
  return join(workDir, process, key);
}

/** Every file reference inside a step's outputs (at any depth). */
export function fileRefsIn(value: JsonValue): FileRef[] {
  const asFile = fileRef.safeParse(value);
  if (asFile.success) return [asFile.data];
  if (Array.isArray(value)) return value.flatMap(fileRefsIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(fileRefsIn);
  return [];
}

const stepMarker = z.object({
  version: z.literal(STEP_MARKER_VERSION),
  key: z.string(),
  process: z.string(),
  outputs: z.record(z.string(), z.json()),
  created: z.string(),
});

export async function writeStepMarker(stepDir: string, key: string, process: string, outputs: Record<string, JsonValue>): Promise<void> {
  const marker = { version: STEP_MARKER_VERSION, key, process, outputs, created: new Date().toISOString() };
  await writeFileAtomic(join(stepDir, STEP_MARKER), JSON.stringify(marker) + '\n');
}

/**
 * The recorded outputs of a completed step, or null when the step must run (again): no marker, a
 * marker for another key, or any output file missing, empty or with the wrong checksum.
 * `onFileChecked` lets the caller heartbeat while large files are hashed.
 */
export async function cachedOutputs(stepDir: string, key: string, onFileChecked: () => void): Promise<Record<string, JsonValue> | null> {
  const text = await readFile(join(stepDir, STEP_MARKER), 'utf8').catch(() => null);
  if (text === null) return null;
  let marker: z.infer<typeof stepMarker>;
  try {
    marker = stepMarker.parse(JSON.parse(text));
  } catch {
    return null;
  }
  if (marker.key !== key) return null;
  const outputs = marker.outputs as Record<string, JsonValue>;
  for (const ref of fileRefsIn(outputs)) {
    const fileMarker = await readValidMarker(ref.path);
    onFileChecked();
    if (!fileMarker || fileMarker.sha256 !== ref.sha256 || fileMarker.bytes !== ref.bytes || fileMarker.rows !== ref.rows) return null;
  }
  return outputs;
}
