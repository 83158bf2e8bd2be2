// A dispatch as an activity on its device's task queue (workflow code): the activity options, the
// step task that carries one task or a group of items, and each task's own result out of it.
import { ActivityCancellationType, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import { scatterPort, type JsonValue, type ProcessSpec } from '../dsl/types';
import { gpuQueue } from '../queues';
import type { StepActivities, StepResult, StepTask } from './messages';
import type { SchedTask } from './scheduler';

/** The step activity on each device's queue, one proxy per device and process. */
export class DeviceActivities {
  private readonly proxies = new Map<string, StepActivities>();

  constructor(private readonly prefix: string) {}

  of(device: string, spec: ProcessSpec): StepActivities {
    const key = `${device}\u0000${spec.name}`;
    let proxy = this.proxies.get(key);
    if (!proxy) {
      proxy = proxyActivities<StepActivities>({
        taskQueue: gpuQueue(this.prefix, device),
        startToCloseTimeout: spec.timeouts.startToCloseMs,
        heartbeatTimeout: spec.timeouts.heartbeatMs ?? undefined,
        // The device's worker takes a queued task at once (it waits there for its predecessor, inside
        // its own start-to-close); one not taken within this long means the worker is gone.
        scheduleToStartTimeout: spec.timeouts.startToCloseMs,
        // The scheduler re-queues failed tasks itself, preferring another device.
        retry: { maximumAttempts: 1 },
        cancellationType: ActivityCancellationType.TRY_CANCEL,
      });
      this.proxies.set(key, proxy);
    }
    return proxy;
  }
}

/** The activity input of a dispatch: its one task, or its group's items on the scattered port. */
export function dispatchTask(spec: ProcessSpec, tasks: Array<{ task: StepTask; sched: Pick<SchedTask, 'failures'> }>): StepTask {
  const previousAttempts = Math.max(...tasks.map((t) => t.sched.failures));
  if (tasks.length === 1 && !spec.group) return { ...tasks[0].task, previousAttempts };
  const port = scatterPort(spec)!;
  return {
    ...tasks[0].task,
    inputs: { ...tasks[0].task.inputs, [port]: tasks.map((t) => t.task.inputs[port] as JsonValue) },
    item: null,
    group: { port, items: tasks.map((t) => t.task.item!) },
    previousAttempts,
  };
}

/** Each task's own result out of a dispatch's. */
export function taskResults(result: StepResult, count: number): StepResult[] {
  if (!result.items) return [result];
  if (result.items.length !== count) throw ApplicationFailure.nonRetryable(`a group of ${count} returned ${result.items.length} results`);
  return result.items.map((item) => ({ outputs: item.outputs, cached: item.cached, key: item.key, device: result.device, seconds: result.seconds }));
}
