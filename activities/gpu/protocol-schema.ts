// Writes the runtime protocol's JSON Schema for the Python side:
//   node dist/activities/gpu/protocol-schema.js          # print it
//   node dist/activities/gpu/protocol-schema.js --write  # update the committed file
// A mocha test fails while the committed file differs from what protocol.ts declares.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { protocolJsonSchema } from './protocol';

export const PROTOCOL_SCHEMA_FILE = path.resolve(__dirname, '..', '..', '..', 'gpu-runtime', 'virnucpro_runtime', 'protocol.schema.json');

export function protocolSchemaText(): string {
  return JSON.stringify(protocolJsonSchema(), null, 1) + '\n';
}

if (require.main === module) {
  if (process.argv.includes('--write')) writeFileSync(PROTOCOL_SCHEMA_FILE, protocolSchemaText());
  else process.stdout.write(protocolSchemaText());
}
