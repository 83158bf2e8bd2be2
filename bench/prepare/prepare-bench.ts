/**
 * Throughput of read preparation on one core, on realistic reads: 300 bp (or -e 500) cut
 * from the viral genomes and the Klebsiella chromosome in shared/data, both strands,
 * random offsets, fixed seed (real codon statistics decide how many frames survive).
 *
 *   taskset -c 0 node dist/bench/prepare/prepare-bench.js [--reads N] [-e 300|500] [--repeat 3]
 *     [--data DIR] [--out FILE] [--pinned "taskset -c 0"]
 *
 * Measures (1) chunk + six-frame translation of reads held in memory, (2) the same read
 * from a FASTA file through the streaming parser, (3) the full prepareReads step
 * (parse, translate, Arrow shards, records table, checksums, fsync). Each is run --repeat times
 * and the fastest run is reported. Writes a JSON result.
 */
import { execSync } from 'node:child_process';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { chunkSpans } from '../../activities/prepare/chunking';
import { emptyStats, prepareChunks } from '../../activities/prepare/chunk-stream';
import { prepareReads } from '../../activities/prepare/prepare-reads';
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

/**
 * Wall-clock and CPU time of `work`. On a shared machine wall-clock time mostly measures the
 * other processes; CPU time (all threads of this process) is the work done on our core.
 */
async function timed(count: number, work: () => Promise<void>) {
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return {
    seconds: Number(seconds.toFixed(2)),
    cpuSeconds: Number(cpuSeconds.toFixed(2)),
    readsPerMinute: perMinute(count, seconds),
    readsPerCpuMinute: perMinute(count, cpuSeconds),
  };
}

/** The fastest of `repeats` runs (a shared machine only ever slows a run down), with all wall times. */
async function best(repeats: number, count: number, work: (run: number) => Promise<void>) {
  const runs = [];
  for (let run = 0; run < repeats; run++) runs.push(await timed(count, () => work(run)));
  const fastest = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  return { ...fastest, wallSecondsOfEachRun: runs.map((r) => r.seconds) };
}

async function main(): Promise<void> {
  const readCount = Number(option('--reads', '2000000'));
  const length = Number(option('-e', '300'));
  const dataDir = resolve(option('--data', '/work/shared/data'));
  const out = option('--out', `bench/results/prepare-${length}bp.json`);
  const repeats = Number(option('--repeat', '3'));

  const loadBefore = loadavg()[0];
  const reads = await cutReads(dataDir, readCount, length);

  const translator = new SixFrameTranslator();
  let frames = 0;
  const translateInMemory = await best(repeats, readCount, async () => {
    frames = 0;
    for (const read of reads) {
      for (const span of chunkSpans(read.length, length)) frames += translator.translate(read.subarray(span.start, span.end)).length;
    }
  });

  const dir = await mkdtemp(join(tmpdir(), 'virnucpro-prepare-bench-'));
  try {
    const fasta = join(dir, 'reads.fa');
    // In slices: the whole file as one string would exceed V8's maximum string length.
    for (let from = 0; from < reads.length; from += 100_000) {
      const slice = reads.slice(from, from + 100_000).map((read, i) => `>read_${from + i + 1}\n${Buffer.from(read).toString('latin1')}\n`);
      await appendFile(fasta, slice.join(''));
    }

    const stats = emptyStats();
    const parseAndTranslateFromFasta = await best(repeats, readCount, async () => {
      for await (const chunk of prepareChunks(readSequences(fasta), fasta, length, stats)) void chunk;
    });
    let prepared: Awaited<ReturnType<typeof prepareReads>> | undefined;
    // A fresh folder each run: a shard already complete from the previous run would be kept, not written.
    const prepareReadsWithShards = await best(repeats, readCount, async (run) => {
      prepared = await prepareReads({ input: fasta, expectedLength: length, workDir: join(dir, `work-${run}`) });
    });

    const result = {
      benchmark: 'prepare (read, chunk, six-frame translate, shards) on one core',
      date: new Date().toISOString(),
      commit: execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim(),
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      logicalCpus: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      pinnedTo: option('--pinned', 'not pinned'),
      // Other processes on the machine slow every figure down; the 1-minute load says how busy it was.
      loadAverage1m: { before: Number(loadBefore.toFixed(2)), after: Number(loadavg()[0].toFixed(2)) },
      reads: readCount,
      readLength: length,
      framesKept: frames,
      framesPerRead: Number((frames / readCount).toFixed(3)),
      translateInMemory,
      parseAndTranslateFromFasta,
      prepareReadsWithShards: { ...prepareReadsWithShards, shards: prepared?.shards.length, frames: prepared?.stats.frames },
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
