// Checksums and verification of step output files (streamed: shards can be large).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FileRef } from './implementation';

export async function hashFile(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Why `ref` cannot be trusted (missing, empty, wrong size or checksum), or null when it can. */
export async function fileProblem(ref: FileRef): Promise<string | null> {
  const info = await stat(ref.path).catch(() => null);
  if (!info || !info.isFile()) return `${ref.path} is missing`;
  if (info.size === 0 && ref.bytes > 0) return `${ref.path} is empty`;
  if (info.size !== ref.bytes) return `${ref.path} has ${info.size} bytes, expected ${ref.bytes}`;
  const { sha256 } = await hashFile(ref.path);
  return sha256 === ref.sha256 ? null : `${ref.path} has the wrong checksum`;
}

/** Reading a step's input: fail loudly rather than compute on a corrupted file. */
export async function assertFileIntact(ref: FileRef): Promise<void> {
  const problem = await fileProblem(ref);
  if (problem) throw new Error(`input file cannot be trusted: ${problem}`);
}

/** A reference to an existing file (e.g. a pipeline input), so cache keys follow its content. */
export async function fileRefOf(path: string, rows = 0): Promise<FileRef> {
  const { bytes, sha256 } = await hashFile(path);
  return { path, rows, bytes, sha256 };
}
