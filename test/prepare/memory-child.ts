// Child process of memory.test.ts: streams a generated FASTA of N megabytes (real bacterial
// DNA from the fixtures, 50 kb records, wrapped at 80 columns; nothing is written to disk)
// through reader + chunking + translation and prints its peak resident memory as JSON.
import { emptyStats, prepareChunks } from '../../activities/prepare/chunk-stream';
import { readSequences, readSequencesFrom } from '../../activities/prepare/sequence-reader';
import { fixture } from './fixtures';

const LINE = 80;
const RECORD_LINES = 625; // 50,000 bases
const LIVE_HEAP_SAMPLE_CHUNKS = 100_000;

async function wrappedPool(): Promise<{ text: Buffer; lines: number }> {
  const parts: Uint8Array[] = [];
  for await (const record of readSequences(fixture('klebsiella_reads.fa.xz'))) parts.push(record.sequence);
  const bases = Buffer.concat(parts);
  const lines = Math.floor(bases.length / LINE);
  const text = Buffer.alloc(lines * (LINE + 1));
  for (let i = 0; i < lines; i++) {
    bases.copy(text, i * (LINE + 1), i * LINE, (i + 1) * LINE);
    text[i * (LINE + 1) + LINE] = 0x0a;
  }
  return { text, lines };
}

async function* generatedFasta(totalBytes: number, pool: { text: Buffer; lines: number }): AsyncGenerator<Buffer> {
  let produced = 0;
  for (let n = 1; produced < totalBytes; n++) {
    const header = Buffer.from(`>generated_${n} 50 kb of Klebsiella reads\n`);
    const first = (n * 7919) % (pool.lines - RECORD_LINES);
    const body = pool.text.subarray(first * (LINE + 1), (first + RECORD_LINES) * (LINE + 1));
    produced += header.length + body.length;
    yield header;
    yield body;
  }
}

/** Live heap after a full collection (needs --expose-gc): what the run holds at this point. */
function liveHeap(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

async function main(): Promise<void> {
  const megabytes = Number(process.argv[2]);
  const pool = await wrappedPool();
  const stats = emptyStats();
  let frameChars = 0;
  const started = Date.now();
  const source = generatedFasta(megabytes * 2 ** 20, pool);
  let maxLiveHeap = 0;
  for await (const chunk of prepareChunks(readSequencesFrom(source, 'generated'), 'generated', 500, stats)) {
    for (const frame of chunk.frames) frameChars += frame.nucleotide.length + frame.protein.length;
    if (stats.chunks % LIVE_HEAP_SAMPLE_CHUNKS === 0) maxLiveHeap = Math.max(maxLiveHeap, liveHeap());
  }
  process.stdout.write(
    JSON.stringify({
      megabytes,
      bases: stats.bases,
      frames: stats.frames,
      frameChars,
      seconds: (Date.now() - started) / 1000,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      maxLiveHeapMiB: maxLiveHeap / 2 ** 20,
    }) + '\n',
  );
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
