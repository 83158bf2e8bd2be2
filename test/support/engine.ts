// The Temporal dev server, real workers and a scratch folder that an engine test file's describe
// block shares: started before its first test, torn down (folder removed) after its last.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTemporal } from './temporal';
import { startWorkers, type TestWorkers } from './workers';

export interface EngineUnderTest {
  env: TestWorkflowEnvironment;
  workers: TestWorkers;
  workDir: string;
}

/** Call inside `describe`; the fields are set once its `before` hook has run. */
export function useEngine(workerOptions: Parameters<typeof startWorkers>[1], scratchPrefix: string): EngineUnderTest {
  const engine = {} as EngineUnderTest;
  before(async () => {
    engine.env = await startTemporal();
    engine.workers = await startWorkers(engine.env, workerOptions);
    engine.workDir = await mkdtemp(join(tmpdir(), scratchPrefix));
  });
  after(async () => {
    await engine.workers?.stop();
    await engine.env?.teardown();
    if (engine.workDir) await rm(engine.workDir, { recursive: true, force: true });
  });
  return engine;
}
