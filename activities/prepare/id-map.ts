// The id map (docs/data-formats.md, "Id map"): the records whose ids were renamed to make them
// unique, as the prepare step, the output folder and `virnucpro translate` all deliver it.
import { writeFileAtomic } from '../files/atomic';
import type { ReadRecord } from './chunk-stream';

/** Its file name in the prepare step's folder and the output folder; `virnucpro translate` puts the input's stem and `_` before it, as it does for its other files. */
export const ID_MAP_FILE = 'id_map.tsv';

/** Writes the id map of `renamed` (in input order) to `path` atomically. */
export async function writeIdMap(path: string, renamed: ReadRecord[]): Promise<{ rows: number; bytes: number; sha256: string }> {
  const lines = ['record_number\toriginal_id\tused_id', ...renamed.map((r) => `${r.number}\t${r.originalId}\t${r.id}`)];
  const written = await writeFileAtomic(path, lines.join('\n') + '\n');
  return { rows: renamed.length, ...written };
}
