// `virnucpro translate INPUT -e {300,500} -o DIR`: the original's preparation step alone.
// Writes the three intermediate files a VirNucPro run leaves on disk, byte-identical to the
// original's, so users can compare with runs they already have or feed other tools.
import { z } from 'zod';
import { commonShape, parseCommand, type CommandSpec } from '../args';
import { createLogger } from '../logging';
import { ReadInputError } from '../../activities/prepare/errors';
import { translateFile } from '../../activities/prepare/translate-files';

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
  try {
    const { paths, idMap, stats } = await translateFile(input, options.expectedLength, options.outputDir, (m) => logger.warn(m));
    logger.info(
      `${stats.records} records (${stats.bases} bases) -> ${stats.chunks} chunks -> ${stats.frames} frames` +
        (stats.skippedEmpty ? `; ${stats.skippedEmpty} empty records skipped` : '') +
        (stats.duplicates ? `; ${stats.duplicates} duplicate ids renamed` : ''),
    );
    for (const path of [...Object.values(paths), ...(idMap ? [idMap] : [])]) process.stdout.write(`${path}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ReadInputError)) throw err;
    logger.error(err.message);
    return 2;
  }
}
