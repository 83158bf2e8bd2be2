// Why a run failed, in terms the command can act on: the failure types of its failed activities
// (the workflow's own failure only carries their messages). `predict` exits 2 for problems with
// what the user gave it (reads, weights, output location) and 1 for everything else.
import type { WorkflowHandle } from '@temporalio/client';

/** Failure types that mean "fix your input", not "something broke". */
export const INPUT_FAILURE_TYPES = new Set(['ReadInputError', 'LegacyImportError', 'runtime.input', 'runtime.weights', 'OutputWriteError']);

interface FailureInfo {
  applicationFailureInfo?: { type?: string | null } | null;
  cause?: FailureInfo | null;
}

export async function failureTypes(handle: WorkflowHandle): Promise<Set<string>> {
  const types = new Set<string>();
  const history = await handle.fetchHistory();
  for (const event of history.events ?? []) {
    let failure = (event.activityTaskFailedEventAttributes?.failure ?? null) as FailureInfo | null;
    while (failure) {
      const type = failure.applicationFailureInfo?.type;
      if (type) types.add(type);
      failure = failure.cause ?? null;
    }
  }
  return types;
}
