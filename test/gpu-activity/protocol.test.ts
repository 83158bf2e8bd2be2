// The runtime protocol is declared once (activities/gpu/protocol.ts); the Python runtime reads its
// JSON Schema export. These checks keep the two sides judging every request alike.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { operations, type Operation } from '../../activities/gpu/protocol';
import { PROTOCOL_SCHEMA_FILE, protocolSchemaText } from '../../activities/gpu/protocol-schema';

interface SharedCase {
  op: Operation;
  args: Record<string, unknown>;
  valid: boolean;
  error?: string;
}

const fixture = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'protocol', 'requests.json');

describe('gpu activity: the runtime protocol, one declaration for both sides', () => {
  it('has its JSON Schema export committed as the Python runtime reads it', () => {
    assert.equal(
      readFileSync(PROTOCOL_SCHEMA_FILE, 'utf8'),
      protocolSchemaText(),
      'protocol.schema.json is stale: run `npm run build && node dist/activities/gpu/protocol-schema.js --write`',
    );
  });

  it('judges the shared request cases as the Python side does', () => {
    const { cases } = JSON.parse(readFileSync(fixture, 'utf8')) as { cases: SharedCase[] };
    for (const c of cases) {
      const parsed = operations[c.op].args.safeParse(c.args);
      assert.equal(parsed.success, c.valid, `${c.op} ${JSON.stringify(c.args)} should be ${c.valid ? 'valid' : `invalid (${c.error})`}`);
    }
  });
});
