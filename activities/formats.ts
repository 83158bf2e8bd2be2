// Our on-disk formats' names and versions, declared once in
// gpu-runtime/virnucpro_runtime/formats.json (the Python runtime reads the same file). Tables
// carry them as schema metadata; readers accept the current version and refuse a newer one.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

export const FORMATS_FILE = path.resolve(__dirname, '..', '..', 'gpu-runtime', 'virnucpro_runtime', 'formats.json');

const table = z.strictObject({ format: z.string().startsWith('virnucpro.'), version: z.number().int().positive() });
const declared = z
  .object({
    tables: z.strictObject({ frames: table, records: table, results: table, embeddings: table }),
    markers: z.strictObject({ file: z.number().int().positive(), step: z.number().int().positive() }),
  })
  .parse(JSON.parse(readFileSync(FORMATS_FILE, 'utf8')));

export type TableFormat = z.infer<typeof table>;
export const TABLES = declared.tables;
export const FILE_MARKER_VERSION = declared.markers.file;
export const STEP_MARKER_VERSION = declared.markers.step;

/** Schema metadata of a table written in `format`'s current version. */
export function formatMetadata(format: TableFormat): Map<string, string> {
  return new Map([
    ['virnucpro.format', format.format],
    ['virnucpro.version', String(format.version)],
  ]);
}
