/**
 * Throughput of read preparation on one core, on realistic reads: 300 bp (or -e 500) cut
 * from the viral genomes and the Klebsiella chromosome in shared/data, both strands,
 * random offsets, fixed seed (real codon statistics decide how many frames survive).
 *
 *   taskset -c 0 node dist/bench/prepare/prepare-bench.js [--reads N] [-e 300|500] [--data DIR] [--out FILE]
 *
 * Measures (1) chunk + six-frame translation of reads held in memory, (2) the same read
 * from a FASTA file through the streaming parser, (3) the full prepareReads step
 * (parse, translate, Arrow shards, records table, checksums, fsync). Writes a JSON result.
 */
import { execSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { chunkSpans } from '../../activities/prepare/chunking';
import { emptyStats, prepareChunks } from '../../activities/prepare/prepared-reads';
import { prepareReads } from '../../activities/prepare/prepare-activity';
import { readSequences } from '../../activities/prepare/sequence-reader';
import { SixFrameTranslator } from '../../activities/prepare/translation';

const GENOMES = ['lambda_virus.fa.gz', 'dwv.fasta.gz', 'vdv1.fasta.gz', 'Acinetobacter_phage.fasta.gz', 'Klebs_HS11286.fna.xz'];

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** Mulberry32: a small seeded generator, so every run cuts the same reads. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COMPLEMENT = new Uint8Array(256).map((_, b) => b);
for (const [x, y] of ['AT', 'TA', 'CG', 'GC']) COMPLEMENT[x.charCodeAt(0)] = y.charCodeAt(0);

async function cutReads(dataDir: string, count: number, length: number): Promise<Uint8Array[]> {
  const sources: Uint8Array[] = [];
  for (const file of GENOMES) {
    for await (const record of readSequences(join(dataDir, file))) if (record.sequence.length > length) sources.push(record.sequence);
  }
  const random = seeded(20250224);
  const reads: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    // Alternate viral and bacterial sources so both kinds of codon statistics are present.
    const source = sources[i % 2 === 0 ? Math.floor(random() * (sources.length - 1)) : sources.length - 1];
    const start = Math.floor(random() * (source.length - length));
    const read = source.slice(start, start + length);
    if (random() < 0.5) {
      read.reverse();
      for (let j = 0; j < read.length; j++) read[j] = COMPLEMENT[read[j]];
    }
    reads.push(read);
  }
  return reads;
}

function perMinute(count: number, seconds: number): number {
  return Math.round((count / seconds) * 60);
}

async function main(): Promise<void> {
  const readCount = Number(option('--reads', '2000000'));
  const length = Number(option('-e', '300'));
  const dataDir = resolve(option('--data', '/work/shared/data'));
  const out = option('--out', `bench/results/prepare-${length}bp.json`);

  const reads = await cutReads(dataDir, readCount, length);

  const translator = new SixFrameTranslator();
  let frames = 0;
  let started = process.hrtime.bigint();
  for (const read of reads) {
    for (const span of chunkSpans(read.length, length)) frames += translator.translate(read.subarray(span.start, span.end)).length;
  }
  const translateSeconds = Number(process.hrtime.bigint() - started) / 1e9;

  const dir = await mkdtemp(join(tmpdir(), 'virnucpro-prepare-bench-'));
  try {
    const fasta = join(dir, 'reads.fa');
    const text: string[] = [];
    reads.forEach((read, i) => text.push(`>read_${i + 1}\n${Buffer.from(read).toString('latin1')}\n`));
    await writeFile(fasta, text.join(''));
    text.length = 0;

    const stats = emptyStats();
    started = process.hrtime.bigint();
    for await (const chunk of prepareChunks(readSequences(fasta), fasta, length, stats)) void chunk;
    const streamSeconds = Number(process.hrtime.bigint() - started) / 1e9;

    started = process.hrtime.bigint();
    const prepared = await prepareReads({ input: fasta, expectedLength: length, workDir: join(dir, 'work') });
    const prepareSeconds = Number(process.hrtime.bigint() - started) / 1e9;

    const result = {
      benchmark: 'prepare (read, chunk, six-frame translate, shards) on one core',
      date: new Date().toISOString(),
      commit: execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim(),
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      logicalCpus: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      pinnedTo: option('--pinned', 'see command'),
      reads: readCount,
      readLength: length,
      framesKept: frames,
      framesPerRead: Number((frames / readCount).toFixed(3)),
      translateInMemory: { seconds: Number(translateSeconds.toFixed(2)), readsPerMinute: perMinute(readCount, translateSeconds) },
      parseAndTranslateFromFasta: { seconds: Number(streamSeconds.toFixed(2)), readsPerMinute: perMinute(readCount, streamSeconds) },
      prepareReadsWithShards: {
        seconds: Number(prepareSeconds.toFixed(2)),
        readsPerMinute: perMinute(readCount, prepareSeconds),
        shards: prepared.shards.length,
        frames: prepared.stats.frames,
      },
    };
    await writeFile(out, JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
