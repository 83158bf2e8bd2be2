/**
 * Opens a read file as a stream of decompressed bytes, choosing the decoder from the
 * file's first bytes (magic numbers), never from its name: users rename files freely.
 * All decoders are JavaScript or WebAssembly so a fresh `npm ci` needs no native build.
 */
import { open } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
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

/** Reads the first bytes of `path` and names its compression; errors name the file. */
export async function detectCompression(path: string): Promise<{ compression: Compression; size: number }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new ReadInputError(path, describeOpenError(err));
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw new ReadInputError(path, 'is a directory, not a sequence file');
    if (stat.size === 0) throw new ReadInputError(path, 'file is empty');
    const head = Buffer.alloc(8);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    for (const [name, magic] of MAGIC) {
      if (bytesRead >= magic.length && magic.every((b, i) => head[i] === b)) {
        if (name === 'zstd') throw new ReadInputError(path, 'zstd compression is not supported (use gzip, bzip2 or xz)');
        return { compression: name, size: stat.size };
      }
    }
    return { compression: 'none', size: stat.size };
  } finally {
    await handle.close();
  }
}

function describeOpenError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory, not a sequence file';
  return `cannot open: ${(err as Error).message}`;
}

/**
 * The decompressed content of `path` as an async iterable of byte chunks. Decoder
 * failures (truncated or corrupt streams) surface as ReadInputError naming the file.
 */
export async function* readDecompressed(path: string): AsyncGenerator<Uint8Array> {
  const { compression } = await detectCompression(path);
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  let decoded: AsyncIterable<Uint8Array>;
  switch (compression) {
    case 'none':
      decoded = raw;
      break;
    case 'gzip':
      decoded = guardStream(raw, raw.pipe(createGunzip()));
      break;
    case 'bzip2':
      // unbzip2-stream is an old-style stream; wrap() makes it async-iterable and forwards errors.
      decoded = new Readable().wrap(guardStream(raw, raw.pipe(unbzip2Stream())));
      break;
    case 'xz':
      decoded = Readable.fromWeb(new XzReadableStream(Readable.toWeb(raw) as ReadableStream<Uint8Array>) as never);
      break;
  }
  try {
    for await (const chunk of decoded) yield chunk;
  } catch (err) {
    throw new ReadInputError(path, `corrupt or truncated ${compression} data (${(err as Error).message})`);
  } finally {
    raw.destroy();
  }
}

/** `pipe` does not forward source errors; forward them so iteration rejects instead of hanging. */
function guardStream(source: Readable, decoder: NodeJS.ReadWriteStream): Readable {
  const out = decoder as unknown as Readable;
  source.on('error', (err) => out.destroy(err));
  return out;
}
