// Streams a (possibly very large) text output into a temporary file next to its final name and
// renames it into place only when every byte is on disk (and, through `finish` + `publish`, only
// when its sibling outputs are complete too), so a crash or a full disk never leaves a partial
// or lone `prediction_results.txt` behind. The whole-file helpers in activities/files/atomic.ts
// take the content in memory; the per-frame outputs of a large run do not fit in a JS string.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

const FLUSH_BYTES = 1 << 20;

export class OutputWriteError extends Error {
  constructor(
    readonly file: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    const reason =
      code === 'ENOSPC' || code === 'EDQUOT'
        ? `the disk is full (${code}); free space in ${path.dirname(file)} or choose another --output-dir, then rerun with --resume`
        : (cause as Error)?.message ?? String(cause);
    super(`cannot write ${file}: ${reason}`);
    this.name = 'OutputWriteError';
  }
}

export interface WrittenFile {
  path: string;
  rows: number;
  bytes: number;
  sha256: string;
}

export class TextFileWriter {
  private readonly hash = createHash('sha256');
  private pending: string[] = [];
  private pendingBytes = 0;
  private bytes = 0;
  private rows = 0;

  private constructor(
    readonly finalPath: string,
    private readonly tmpPath: string,
    private readonly handle: fs.FileHandle,
  ) {}

  static async open(finalPath: string): Promise<TextFileWriter> {
    const tmpPath = `${finalPath}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      return new TextFileWriter(finalPath, tmpPath, await fs.open(tmpPath, 'wx'));
    } catch (error) {
      throw new OutputWriteError(finalPath, (error as NodeJS.ErrnoException).code, error);
    }
  }

  /** One line (without its newline); `countsAsRow` false for headers and comment lines. */
  async line(text: string, countsAsRow = true): Promise<void> {
    const withNewline = `${text}\n`;
    this.pending.push(withNewline);
    this.pendingBytes += withNewline.length;
    if (countsAsRow) this.rows += 1;
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const data = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    this.pendingBytes = 0;
    try {
      // a write may be short (e.g. the last free blocks of a disk); the next one then fails
      for (let offset = 0; offset < data.length; ) {
        const { bytesWritten } = await this.handle.write(data, offset);
        offset += bytesWritten;
      }
    } catch (error) {
      await this.abandon();
      throw new OutputWriteError(this.finalPath, (error as NodeJS.ErrnoException).code, error);
    }
    this.hash.update(data);
    this.bytes += data.length;
  }

  /** Flush and fsync; the file stays under its temporary name until `publish`. */
  async finish(): Promise<WrittenFile> {
    await this.flush();
    try {
      await this.handle.sync();
      await this.handle.close();
    } catch (error) {
      await this.abandon();
      throw new OutputWriteError(this.finalPath, (error as NodeJS.ErrnoException).code, error);
    }
    return { path: this.finalPath, rows: this.rows, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  /** Rename a finished file into place and fsync its folder. */
  async publish(): Promise<void> {
    try {
      await fs.rename(this.tmpPath, this.finalPath);
      const dir = await fs.open(path.dirname(this.finalPath), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (error) {
      await fs.rm(this.tmpPath, { force: true });
      throw new OutputWriteError(this.finalPath, (error as NodeJS.ErrnoException).code, error);
    }
  }

  /** `finish` then `publish`: for a file that does not wait for siblings. */
  async commit(): Promise<WrittenFile> {
    const written = await this.finish();
    await this.publish();
    return written;
  }

  /** Drop the temporary file (after any failure, including one outside this writer). */
  async abandon(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await fs.rm(this.tmpPath, { force: true });
  }
}
