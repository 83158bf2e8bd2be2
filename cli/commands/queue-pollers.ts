// Whether some worker (e.g. `virnucpro worker` on this or another host) serves a task queue now.
// The server lists a worker that went away for a while after it stopped polling, so a poller
// counts only if the server heard from it within one long-poll interval and, when it runs on
// this host (identity `pid@host`, the SDK's default), its process is still alive: a `predict`
// that exited a moment ago must not be mistaken for a worker.
import type { Client } from '@temporalio/client';
import * as os from 'node:os';

const WORKFLOW_TASK_QUEUE = 1; // temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
const FRESH_MS = 70_000; // a long poll lasts up to 60 s

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function plausiblyServing(identity: string): boolean {
  const match = /^(\d+)@(.+)$/.exec(identity);
  if (!match || match[2] !== os.hostname()) return true;
  return Number(match[1]) !== process.pid && alive(Number(match[1]));
}

export async function queueIsServed(client: Client, namespace: string, queue: string): Promise<boolean> {
  const response = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: queue }, taskQueueType: WORKFLOW_TASK_QUEUE });
  const now = Date.now();
  return (response.pollers ?? []).some((poller) => {
    const seconds = Number(poller.lastAccessTime?.seconds ?? 0);
    return now - seconds * 1000 < FRESH_MS && plausiblyServing(poller.identity ?? '');
  });
}
