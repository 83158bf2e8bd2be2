// Crash-safe outputs (docs/data-formats.md, "Completion markers"): write to a temporary name,
// fsync, rename, fsync the folder; then record `X.done` the same way. A reader trusts `X` only
// through a marker whose size and checksum match, so a half-written file is never consumed.
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { z } from 'zod';
import { hashFile } from '../steps/files';
import { FILE_MARKER_VERSION } from '../formats';


const markerSchema = z.object({
  version: z.literal(FILE_MARKER_VERSION),
  file: z.string(),
  rows: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  created: z.string(),
});
export type DoneMarker = z.infer<typeof markerSchema>;

export function markerPath(path: string): string {
  return `${path}.done`;
}

async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * `data` may be a stream of byte chunks (e.g. an Arrow writer) for files too large to build in
 * memory first; it is hashed as it is written.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | AsyncIterable<Uint8Array>,
): Promise<{ bytes: number; sha256: string }> {
  const chunks = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  const temporary = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const hash = createHash('sha256');
  let bytes = 0;
  const handle = await open(temporary, 'w');
  try {
    for await (const chunk of chunks) {
      await handle.writeFile(chunk); // writes all of it, from the current position
      hash.update(chunk);
      bytes += chunk.length;
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temporary, path);
  await fsyncDirectory(dirname(path));
  return { bytes, sha256: hash.digest('hex') };
}

export async function writeDoneMarker(path: string, facts: { rows: number; bytes: number; sha256: string }): Promise<DoneMarker> {
  const marker: DoneMarker = { version: FILE_MARKER_VERSION, file: basename(path), ...facts, created: new Date().toISOString() };
  await writeFileAtomic(markerPath(path), JSON.stringify(marker) + '\n');
  return marker;
}

/** The marker of `path` as written (whoever wrote it), or null when there is none or it is malformed. */
export async function readMarker(path: string): Promise<DoneMarker | null> {
  const text = await readFile(markerPath(path), 'utf8').catch(() => null);
  if (text === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const marker = markerSchema.safeParse(parsed);
  return marker.success && marker.data.file === basename(path) ? marker.data : null;
}

/** The marker of `path` if the file exists with the recorded size and checksum, else null. */
export async function readValidMarker(path: string): Promise<DoneMarker | null> {
  const marker = await readMarker(path);
  if (!marker) return null;
  const actual = await hashFile(path).catch(() => null);
  if (!actual || actual.bytes !== marker.bytes || actual.sha256 !== marker.sha256) return null;
  return marker;
}
