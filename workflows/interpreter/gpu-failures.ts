// What a failed gpu dispatch means for its device and its tasks (workflow code: pure).
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import { DEVICE_STALLED } from './messages';
import type { DispatchFailure, SchedTask } from './scheduler';

export function classifyFailure(error: unknown): DispatchFailure {
  const nonRetryable = error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.nonRetryable;
  return { stall: isStall(error), retryable: !nonRetryable, description: describeFailure(error) };
}

/** The run's failure once a task used up its attempts; `where` names the task. */
export function exhaustedFailure(where: string, task: SchedTask, lastError: string | null): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `gpu task ${where} failed ${task.failures} time(s) (devices tried: ${task.avoid.join(', ')}); last error: ${lastError}`,
    'GpuTaskFailed',
  );
}

function isStall(error: unknown): boolean {
  if (!(error instanceof ActivityFailure)) return false;
  if (error.cause instanceof ApplicationFailure) return error.cause.type === DEVICE_STALLED;
  return (
    error.cause instanceof TimeoutFailure &&
    (error.cause.timeoutType === 'HEARTBEAT' || error.cause.timeoutType === 'START_TO_CLOSE' || error.cause.timeoutType === 'SCHEDULE_TO_START')
  );
}

function describeFailure(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) {
    if (error.cause instanceof TimeoutFailure) return `${error.cause.timeoutType ?? 'unknown'} timeout`;
    return error.cause.message;
  }
  return error instanceof Error ? error.message : String(error);
}
