/**
 * Turns a read file (or any byte stream) into a stream of decompressed bytes, choosing the
 * decoder from the first bytes (magic numbers), never from the name: users rename files
 * freely. All decoders are JavaScript or WebAssembly, so a fresh `npm ci` needs no native
 * build. Works on pipes too (nothing is re-read from the start).
 *
 * bzip2 is the exception for speed: the pure-JS decoder manages ~3-4 MiB/s (a bottleneck:
 * ~10,000 reads/s), so when a `bzip2` program is on PATH it decodes in a child process
 * (~10x faster, on another core). VIRNUCPRO_BZIP2=js or =system forces one of the two.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { XzReadableStream } from 'xz-decompress';
import unbzip2Stream from 'unbzip2-stream';
import { ReadInputError } from './errors';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz';

const MAGIC: Array<[Compression | 'zstd', number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68]], // "BZh"
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];
const MAGIC_BYTES = 6;
const READ_BLOCK = 1 << 20;

/** Names the compression of data starting with `head` (at least 6 bytes unless the data is shorter). */
export function detectCompression(head: Uint8Array, name: string): Compression {
  for (const [format, magic] of MAGIC) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) {
      if (format === 'zstd') throw new ReadInputError(name, 'zstd compression is not supported (use gzip, bzip2 or xz)');
      return format;
    }
  }
  return 'none';
}

/** The decompressed content of the file at `path`; missing, unreadable or empty files fail clearly. */
export async function* readDecompressed(path: string): AsyncGenerator<Uint8Array> {
  const info = await stat(path).catch((err: unknown) => {
    throw new ReadInputError(path, describeOpenError(err));
  });
  if (info.isDirectory()) throw new ReadInputError(path, 'is a directory, not a sequence file');
  if (!info.isFile()) {
    // A pipe cannot be read twice: sniff the compression from the stream itself.
    for await (const chunk of decompress(createReadStream(path, { highWaterMark: READ_BLOCK }), path)) yield chunk;
    return;
  }
  if (info.size === 0) throw new ReadInputError(path, 'file is empty');
  const compression = detectCompression(await readHead(path), path);
  const raw = createReadStream(path, { highWaterMark: READ_BLOCK });
  try {
    for await (const chunk of decode(raw, compression, path)) yield chunk;
  } finally {
    raw.destroy();
  }
}

async function readHead(path: string): Promise<Uint8Array> {
  const handle = await open(path, 'r').catch((err: unknown) => {
    throw new ReadInputError(path, describeOpenError(err));
  });
  try {
    const head = Buffer.alloc(MAGIC_BYTES);
    const { bytesRead } = await handle.read(head, 0, MAGIC_BYTES, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * The decompressed content of any byte stream (a pipe, generated data); `name` is used in
 * errors. Decoder failures (truncated or corrupt data) surface as ReadInputError.
 */
export async function* decompress(source: AsyncIterable<Uint8Array>, name: string): AsyncGenerator<Uint8Array> {
  const input = source[Symbol.asyncIterator]();
  let head: Uint8Array = new Uint8Array(0);
  try {
    while (head.length < MAGIC_BYTES) {
      const next = await input.next();
      if (next.done) break;
      head = head.length === 0 ? next.value : Buffer.concat([head, next.value]);
    }
  } catch (err) {
    throw new ReadInputError(name, describeOpenError(err));
  }
  if (head.length === 0) throw new ReadInputError(name, 'file is empty');
  const compression = detectCompression(head, name);
  async function* rest(): AsyncGenerator<Uint8Array> {
    yield head;
    for (let next = await input.next(); !next.done; next = await input.next()) yield next.value;
  }
  try {
    // Plain data stays a chain of generators: wrapping it in Readable.from() made Node 20 keep
    // memory per block when the consumer is slow (test/prepare/memory.test.ts caught it).
    if (compression === 'none') {
      for await (const chunk of rest()) yield chunk;
      return;
    }
    const raw = Readable.from(rest(), { objectMode: false });
    try {
      for await (const chunk of decode(raw, compression, name)) yield chunk;
    } finally {
      raw.destroy();
    }
  } finally {
    // Also when the consumer stops early: close the source (a file stream, a pipe).
    await input.return?.();
  }
}

/** `raw` decoded; decoder errors become ReadInputError naming `name`. */
async function* decode(raw: Readable, compression: Compression, name: string): AsyncGenerator<Uint8Array> {
  let decoded: AsyncIterable<Uint8Array>;
  switch (compression) {
    case 'none':
      decoded = raw;
      break;
    case 'gzip':
      decoded = forwardErrors(raw, raw.pipe(createGunzip()));
      break;
    case 'bzip2': {
      const program = bzip2Program();
      if (program) {
        for await (const chunk of decodeWithProgram(raw, program, name)) yield chunk;
        return;
      }
      // unbzip2-stream is an old-style stream: pipe it into a PassThrough to get an async
      // iterable. (Readable.wrap() would end early: the old stream's 'close' can come first.)
      const decoder = forwardErrors(raw, raw.pipe(unbzip2Stream()) as unknown as Readable);
      const out = new PassThrough();
      decoder.on('error', (err) => out.destroy(err));
      decoded = decoder.pipe(out);
      break;
    }
    case 'xz':
      decoded = Readable.fromWeb(new XzReadableStream(Readable.toWeb(raw) as ReadableStream<Uint8Array>) as never);
      break;
  }
  try {
    for await (const chunk of decoded) yield chunk;
  } catch (err) {
    if (err instanceof ReadInputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EISDIR') throw new ReadInputError(name, describeOpenError(err));
    const reason = compression === 'none' ? `cannot read: ${(err as Error).message}` : `corrupt or truncated ${compression} data (${(err as Error).message})`;
    throw new ReadInputError(name, reason);
  }
}

/** The bzip2 program to use, or null for the pure-JS decoder. */
export function bzip2Program(): string | null {
  const choice = process.env.VIRNUCPRO_BZIP2 ?? 'auto';
  if (choice === 'js') return null;
  const found = findOnPath('bzip2');
  if (choice === 'system' && !found) throw new Error('VIRNUCPRO_BZIP2=system but no bzip2 program is on PATH');
  return found;
}

function findOnPath(program: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return null;
}

/** `program -dc` as a filter; a non-zero exit (corrupt, truncated input) becomes ReadInputError. */
async function* decodeWithProgram(raw: Readable, program: string, name: string): AsyncGenerator<Uint8Array> {
  const child = spawn(program, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const spawnFailed = new Promise<never>((_, reject) => child.on('error', reject));
  spawnFailed.catch(() => undefined);
  let stderr = '';
  child.stderr.on('data', (text: Buffer) => (stderr += text.toString()));
  // The program may stop reading early (corrupt input); its exit status tells why, not EPIPE.
  child.stdin.on('error', () => undefined);
  raw.on('error', (err) => child.stdout.destroy(err));
  raw.pipe(child.stdin);
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const { code, signal } = await Promise.race([exited, spawnFailed]);
    if (code !== 0) {
      // bzip2's first line names the problem ("Compressed file ends unexpectedly;"); the rest is advice.
      const why = stderr.trim().split('\n')[0] || (signal ? `killed by ${signal}` : `exit status ${code}`);
      throw new ReadInputError(name, `corrupt or truncated bzip2 data (${why})`);
    }
  } finally {
    raw.unpipe(child.stdin);
    if (child.exitCode === null) child.kill();
  }
}

function describeOpenError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory, not a sequence file';
  return `cannot read: ${(err as Error).message}`;
}

/** `pipe` does not forward source errors; forward them so iteration rejects instead of hanging. */
function forwardErrors(source: Readable, decoder: Readable): Readable {
  source.on('error', (err) => decoder.destroy(err));
  return decoder;
}
