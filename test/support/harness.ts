// The Temporal dev server, real workers and a scratch folder that a pipeline test file's describe
// block shares: started before its first test, torn down (folder removed) after its last.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTemporal } from './temporal';
import { startWorkers, type TestWorkers } from './workers';

export interface Harness {
  env: TestWorkflowEnvironment;
  workers: TestWorkers;
  workDir: string;
}

/** Call inside `describe`; the fields are set once its `before` hook has run. */
export function useHarness(workerOptions: Parameters<typeof startWorkers>[1], scratchPrefix: string): Harness {
  const harness = {} as Harness;
  before(async () => {
    harness.env = await startTemporal();
    harness.workers = await startWorkers(harness.env, workerOptions);
    harness.workDir = await mkdtemp(join(tmpdir(), scratchPrefix));
  });
  after(async () => {
    await harness.workers?.stop();
    await harness.env?.teardown();
    if (harness.workDir) await rm(harness.workDir, { recursive: true, force: true });
  });
  return harness;
}
