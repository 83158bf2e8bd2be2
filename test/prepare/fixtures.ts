// Paths and scratch folders shared by the prepare tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** test/fixtures/prepare in the source tree (the tests run from dist/test/prepare). */
export const FIXTURES = resolve(__dirname, '../../../test/fixtures/prepare');

export function fixture(name: string): string {
  return join(FIXTURES, name);
}

/** A fresh scratch folder, removed by the returned function. */
export function scratch(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'virnucpro-prepare-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
