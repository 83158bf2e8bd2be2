// The earlier runs of the original VirNucPro or the multi-GPU fork that left embeddings for an
// input: where each tool puts its files is the Python side's (legacy_layouts.py, declared once);
// `predict --resume` asks it before a run starts. Each run's files, with size and modification
// time, are part of the import step's parameters: a file that changes is imported again.
import { spawnSync } from 'node:child_process';
import { z } from 'zod';
import { defaultPython } from '../gpu/runtime-process';

export const legacyRun = z.strictObject({
  tool: z.enum(['VirNucPro', 'virnucpro-broad']),
  /** The folders are `<prefix>_nucleotide`, `<prefix>_protein`, `<prefix>_merged`. */
  prefix: z.string().min(1),
  /** The fork's `.checkpoints` folder, where it exists. */
  state: z.string().nullable(),
  files: z.array(z.strictObject({ path: z.string(), bytes: z.number().int().nonnegative(), modified: z.number() })),
});
export type LegacyRun = z.infer<typeof legacyRun>;

export function findLegacyRuns(input: string, outDir: string): LegacyRun[] {
  const found = spawnSync(defaultPython(), ['-m', 'virnucpro_runtime', 'import-legacy', '--find', input, outDir], { encoding: 'utf8' });
  if (found.error) throw new Error(`could not start ${defaultPython()} to look for earlier runs' files: ${found.error.message}`);
  if (found.status !== 0) throw new Error(`looking for earlier runs' files failed: ${found.stderr.trim()}`);
  return z.array(legacyRun).parse(JSON.parse(found.stdout));
}
