// `virnucpro translate INPUT -e {300,500} -o DIR`: the original's preparation step alone.
// Writes the three intermediate files a VirNucPro run leaves on disk, byte-identical to the
// original's, so users can compare with runs they already have or feed other tools.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { commonShape, parseCommand, type CommandSpec } from '../args';
import { createLogger } from '../logging';
import { OriginalFilesWriter, originalFilePaths, originalStem } from '../../activities/prepare/original-files';
import { emptyStats, prepareChunks, type ReadRecord } from '../../activities/prepare/prepared-reads';
import { ReadInputError } from '../../activities/prepare/errors';
import { readSequences } from '../../activities/prepare/sequence-reader';
import { TextFileWriter } from '../../activities/outputs/text-file-writer';

const schema = z.object({
  _: z.tuple([z.string().min(1)]),
  expectedLength: z.enum(['300', '500'], { message: 'must be 300 or 500' }).transform(Number),
  outputDir: z.string().min(1).default('.'),
  ...commonShape,
});

const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro translate',
  summary: "Cut reads into chunks and translate them in six frames, writing the original's intermediate files.",
  positionals: [{ name: 'INPUT', help: 'FASTA or FASTQ, plain or gzip/bzip2/xz compressed (detected from content)' }],
  options: [
    { long: 'expected-length', short: 'e', value: 'L', help: 'chunk length: 300 or 500 (required)' },
    { long: 'output-dir', short: 'o', value: 'DIR', help: 'where to write the files (default: current directory)' },
  ],
  epilog: [
    'Writes DIR/<stem>_chunked<L>.fa, DIR/<stem>_identified_nucleotide.fa and DIR/<stem>_identified_protein.faa,',
    'where <stem> is the input file name cut at its first ".fa" (as the original does) or without its',
    'compression and sequence extensions. Records with an empty sequence are skipped; duplicate ids',
    'are renamed id_2, id_3, ... and listed in DIR/<stem>_id_map.tsv.',
  ].join('\n'),
  schema,
};

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(spec, argv);
  if (!options) return 0;
  const logger = createLogger(options);
  const [input] = options._;
  await mkdir(options.outputDir, { recursive: true });
  const paths = originalFilePaths(options.outputDir, input, options.expectedLength);
  const writer = await OriginalFilesWriter.open(paths);
  const stats = emptyStats();
  const renamed: ReadRecord[] = [];
  try {
    for await (const chunk of prepareChunks(readSequences(input), input, options.expectedLength, stats, (m) => logger.warn(m))) {
      if (chunk.k === 1 && chunk.record.id !== chunk.record.originalId) renamed.push(chunk.record);
      await writer.add(chunk);
    }
    if (stats.records === 0) throw new ReadInputError(input, 'no record with a non-empty sequence');
    await writer.commit();
  } catch (err) {
    await writer.abandon();
    if (err instanceof ReadInputError) {
      logger.error(err.message);
      return 2;
    }
    throw err;
  }
  if (renamed.length > 0) await writeIdMap(join(options.outputDir, `${originalStem(input)}_id_map.tsv`), renamed);
  logger.info(
    `${stats.records} records (${stats.bases} bases) -> ${stats.chunks} chunks -> ${stats.frames} frames` +
      (stats.skippedEmpty ? `; ${stats.skippedEmpty} empty records skipped` : '') +
      (stats.duplicates ? `; ${stats.duplicates} duplicate ids renamed` : ''),
  );
  for (const path of Object.values(paths)) process.stdout.write(`${path}\n`);
  return 0;
}

async function writeIdMap(path: string, renamed: ReadRecord[]): Promise<void> {
  const out = await TextFileWriter.open(path);
  await out.line('record_number\toriginal_id\tused_id', false);
  for (const r of renamed) await out.line(`${r.number}\t${r.originalId}\t${r.id}`);
  await out.commit();
  process.stdout.write(`${path}\n`);
}
