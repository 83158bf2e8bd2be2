// A readable digest of a workflow history: what ran, what failed and why, without the raw events.
import type { WorkflowHandle } from '@temporalio/client';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

interface ActivityTally {
  scheduled: number;
  completed: number;
  failed: number;
  timedOut: number;
  cancelled: number;
  /** Tasks that needed more than one attempt (server-side retries leave no event of their own). */
  retried: number;
}

/** The event's kind, from whichever `<kind>EventAttributes` field it carries. */
export function eventKind(event: HistoryEvent): string {
  for (const [key, value] of Object.entries(event)) {
    if (key.endsWith('EventAttributes') && value) return key.slice(0, -'EventAttributes'.length);
  }
  return 'unknown';
}

function eventTime(event: HistoryEvent): string {
  const seconds = Number(event.eventTime?.seconds ?? 0);
  return seconds ? new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 19) : '?';
}

export function summarizeHistory(history: History): string[] {
  const events = history.events ?? [];
  const typeOfScheduled = new Map<string, string>();
  const tallies = new Map<string, ActivityTally>();
  const failures: string[] = [];
  const children = { started: 0, completed: 0, failed: 0 };
  let workflowOutcome = 'still running';
  const tally = (scheduledId: unknown): ActivityTally => {
    const type = typeOfScheduled.get(String(scheduledId)) ?? '?';
    let t = tallies.get(type);
    if (!t) tallies.set(type, (t = { scheduled: 0, completed: 0, failed: 0, timedOut: 0, cancelled: 0, retried: 0 }));
    return t;
  };
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const type = `${scheduled.activityType?.name ?? '?'} on ${scheduled.taskQueue?.name ?? '?'}`;
      typeOfScheduled.set(String(event.eventId), type);
      tally(event.eventId).scheduled++;
    }
    const taskStarted = event.activityTaskStartedEventAttributes;
    if (taskStarted && (taskStarted.attempt ?? 1) > 1) tally(taskStarted.scheduledEventId).retried++;
    if (event.activityTaskCompletedEventAttributes) tally(event.activityTaskCompletedEventAttributes.scheduledEventId).completed++;
    const failed = event.activityTaskFailedEventAttributes;
    if (failed) {
      tally(failed.scheduledEventId).failed++;
      failures.push(`${eventTime(event)} ${typeOfScheduled.get(String(failed.scheduledEventId))} failed: ${failed.failure?.message ?? '?'}`);
    }
    const timedOut = event.activityTaskTimedOutEventAttributes;
    if (timedOut) {
      tally(timedOut.scheduledEventId).timedOut++;
      failures.push(`${eventTime(event)} ${typeOfScheduled.get(String(timedOut.scheduledEventId))} timed out: ${timedOut.failure?.message ?? '?'}`);
    }
    if (event.activityTaskCanceledEventAttributes) tally(event.activityTaskCanceledEventAttributes.scheduledEventId).cancelled++;
    if (event.childWorkflowExecutionStartedEventAttributes) children.started++;
    if (event.childWorkflowExecutionCompletedEventAttributes) children.completed++;
    if (event.childWorkflowExecutionFailedEventAttributes) children.failed++;
    if (event.workflowExecutionCompletedEventAttributes) workflowOutcome = `completed at ${eventTime(event)}`;
    if (event.workflowExecutionFailedEventAttributes) workflowOutcome = `failed at ${eventTime(event)}: ${event.workflowExecutionFailedEventAttributes.failure?.message ?? '?'}`;
    if (event.workflowExecutionCanceledEventAttributes) workflowOutcome = `cancelled at ${eventTime(event)}`;
    if (event.workflowExecutionTerminatedEventAttributes) workflowOutcome = `terminated at ${eventTime(event)}: ${event.workflowExecutionTerminatedEventAttributes.reason ?? ''}`;
    if (event.workflowExecutionContinuedAsNewEventAttributes) workflowOutcome = `continued as a new run at ${eventTime(event)}`;
  }
  const lines = [`events: ${events.length}${events.length ? ` (${eventTime(events[0])} .. ${eventTime(events[events.length - 1])})` : ''}`, `outcome: ${workflowOutcome}`];
  for (const [type, t] of [...tallies.entries()].sort()) {
    lines.push(`activity ${type}: scheduled ${t.scheduled}, completed ${t.completed}, failed ${t.failed}, timed out ${t.timedOut}, cancelled ${t.cancelled}, retried ${t.retried}`);
  }
  if (children.started) lines.push(`child workflows: started ${children.started}, completed ${children.completed}, failed ${children.failed}`);
  if (failures.length) lines.push(`failures (${failures.length}, last 10):`, ...failures.slice(-10).map((f) => `  ${f}`));
  return lines;
}
