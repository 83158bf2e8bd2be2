// Whether some worker (e.g. `virnucpro worker` on this or another host) serves a task queue now.
// A poller the server saw within the last long-poll interval is alive; older entries are workers
// that went away and linger in the server's list for a while.
import type { Client } from '@temporalio/client';

const WORKFLOW_TASK_QUEUE = 1; // temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
const FRESH_MS = 70_000; // a long poll lasts up to 60 s

export async function queueIsServed(client: Client, namespace: string, queue: string): Promise<boolean> {
  const response = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: queue }, taskQueueType: WORKFLOW_TASK_QUEUE });
  const now = Date.now();
  return (response.pollers ?? []).some((poller) => {
    const seconds = Number(poller.lastAccessTime?.seconds ?? 0);
    return now - seconds * 1000 < FRESH_MS;
  });
}
