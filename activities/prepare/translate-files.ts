/**
 * `virnucpro translate` without the command line: one input file to the original's three
 * intermediate files (plus an id map when ids had to be renamed).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ReadInputError } from './errors';
import { OriginalFilesWriter, originalFilePaths, originalStem, type OriginalFilePaths } from './original-files';
import { emptyStats, prepareChunks, type PrepareStats, type ReadRecord, type Warn } from './chunk-stream';
import { ID_MAP_FILE, writeIdMap } from './id-map';
import { readSequences } from './sequence-reader';

export interface TranslateResult {
  paths: OriginalFilePaths;
  /** `<stem>_id_map.tsv`, written only when duplicate ids were renamed. */
  idMap?: string;
  stats: PrepareStats;
}

export async function translateFile(input: string, expectedLength: number, outputDir: string, warn?: Warn): Promise<TranslateResult> {
  await mkdir(outputDir, { recursive: true });
  const paths = originalFilePaths(outputDir, input, expectedLength);
  const writer = await OriginalFilesWriter.open(paths);
  const stats = emptyStats();
  const renamed: ReadRecord[] = [];
  try {
    for await (const chunk of prepareChunks(readSequences(input), input, expectedLength, stats, warn)) {
      if (chunk.k === 1 && chunk.record.id !== chunk.record.originalId) renamed.push(chunk.record);
      await writer.add(chunk);
    }
    if (stats.records === 0) throw new ReadInputError(input, 'no record with a non-empty sequence');
    await writer.commit();
  } catch (err) {
    await writer.abandon();
    throw err;
  }
  if (renamed.length === 0) return { paths, stats };
  const idMap = join(outputDir, `${originalStem(input)}_${ID_MAP_FILE}`);
  await writeIdMap(idMap, renamed);
  return { paths, idMap, stats };
}
