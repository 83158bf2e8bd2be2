// A workflow interceptor for the replay test, bundled into the workflow code there: it reports
// every activity, child workflow and timer the code schedules (sequence number, type, input)
// through a sink. Replay itself checks the kinds and order of commands but not their inputs, so
// two steps scheduled in swapped order would replay "fine" and hand each other's results back.
import { proxySinks, type Sinks, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

export interface CommandSinks extends Sinks {
  commands: {
    /** `key`: `activity:<seq>`, `child:<workflow id>` or `timer:<seq>`; `input` as JSON. */
    issued(key: string, type: string, input: string): void;
  };
}

const { commands } = proxySinks<CommandSinks>();

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        commands.issued(`activity:${input.seq}`, input.activityType, JSON.stringify(input.args));
        return next(input);
      },
      startChildWorkflowExecution(input, next) {
        commands.issued(`child:${input.options.workflowId}`, input.workflowType, JSON.stringify(input.options.args ?? []));
        return next(input);
      },
      startTimer(input, next) {
        commands.issued(`timer:${input.seq}`, 'timer', JSON.stringify(input.durationMs));
        return next(input);
      },
    },
  ],
});
