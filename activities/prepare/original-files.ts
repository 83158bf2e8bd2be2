/**
 * The three intermediate files a run of the original leaves on disk (docs: original
 * pipeline, section 7), byte for byte: the chunked reads as Biopython's SeqIO.write
 * writes them (sequence wrapped at 60 columns), then the kept frames' nucleotide and
 * protein strings, one line each.
 */
import { basename, join } from 'node:path';
import { TextFileWriter } from '../outputs/text-file-writer';
import type { PreparedChunk } from './chunk-stream';

const BIOPYTHON_FASTA_WRAP = 60;

/**
 * The original names its files after the input path cut at its first ".fa"; we do the same
 * on the file name, and for names without ".fa" (e.g. reads.fq.gz) drop the compression
 * and sequence extensions instead of keeping them.
 */
export function originalStem(inputPath: string): string {
  const name = basename(inputPath);
  const fa = name.indexOf('.fa');
  if (fa > 0) return name.slice(0, fa);
  const stem = name.replace(/\.(gz|bz2|xz)$/i, '').replace(/\.(fastq|fq|fna|ffn|seq|txt)$/i, '');
  return stem || name;
}

export interface OriginalFilePaths {
  chunked: string;
  nucleotide: string;
  protein: string;
}

export function originalFilePaths(outDir: string, inputPath: string, expectedLength: number): OriginalFilePaths {
  const stem = originalStem(inputPath);
  return {
    chunked: join(outDir, `${stem}_chunked${expectedLength}.fa`),
    nucleotide: join(outDir, `${stem}_identified_nucleotide.fa`),
    protein: join(outDir, `${stem}_identified_protein.faa`),
  };
}

/** Writes the three files as chunks stream by; each appears only once complete. */
export class OriginalFilesWriter {
  private constructor(
    readonly paths: OriginalFilePaths,
    private readonly chunked: TextFileWriter,
    private readonly nucleotide: TextFileWriter,
    private readonly protein: TextFileWriter,
  ) {}

  static async open(paths: OriginalFilePaths): Promise<OriginalFilesWriter> {
    const writers: TextFileWriter[] = [];
    try {
      for (const path of [paths.chunked, paths.nucleotide, paths.protein]) writers.push(await TextFileWriter.open(path));
    } catch (err) {
      await Promise.all(writers.map((w) => w.abandon()));
      throw err;
    }
    return new OriginalFilesWriter(paths, writers[0], writers[1], writers[2]);
  }

  async add(chunk: PreparedChunk): Promise<void> {
    await this.chunked.line(`>${chunk.name}`, false);
    const bases = Buffer.from(chunk.bases.buffer, chunk.bases.byteOffset, chunk.bases.length);
    for (let i = 0; i < bases.length; i += BIOPYTHON_FASTA_WRAP) {
      await this.chunked.line(bases.toString('latin1', i, Math.min(i + BIOPYTHON_FASTA_WRAP, bases.length)));
    }
    for (const frame of chunk.frames) {
      const name = `>${chunk.name}${frame.frame}`;
      await this.nucleotide.line(name, false);
      await this.nucleotide.line(frame.nucleotide);
      await this.protein.line(name, false);
      await this.protein.line(frame.protein);
    }
  }

  async commit(): Promise<void> {
    await this.chunked.commit();
    await this.nucleotide.commit();
    await this.protein.commit();
  }

  async abandon(): Promise<void> {
    await Promise.all([this.chunked.abandon(), this.nucleotide.abandon(), this.protein.abandon()]);
  }
}
