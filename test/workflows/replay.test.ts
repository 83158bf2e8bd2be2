// Recorded histories of real runs (test/histories/, made by test/support/record-histories.ts)
// must replay against the current workflow code: a change that is not guarded by patched()
// breaks in-flight runs, and fails here.
import { Worker } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHistoryFile } from '../support/histories';
import { repoRoot, workflowBundle } from '../support/temporal';

const historiesDir = join(repoRoot, 'test', 'histories');

describe('interpreter: replay of recorded histories', function () {
  this.timeout(120_000);

  const files = readdirSync(historiesDir).filter((name) => name.endsWith('.json'));

  it('has recorded histories of the selftest pipeline and of child batch workflows', () => {
    assert.ok(files.some((name) => name.startsWith('selftest-')), files.join(', '));
    assert.ok(files.some((name) => name.includes('__batch-')), files.join(', '));
  });

  it('replays every recorded history deterministically', async () => {
    const histories = files.map((name) => fromHistoryFile(JSON.parse(readFileSync(join(historiesDir, name), 'utf8'))));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    assert.deepEqual(failures, []);
  });
});
