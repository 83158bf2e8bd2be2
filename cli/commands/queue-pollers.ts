// Whether some worker (e.g. `virnucpro worker` on this or another host) serves a task queue now.
// The server lists a worker that went away for a while after it stopped polling, so a poller
// counts only if the server heard from it within one long-poll interval and, when it runs on
// this host (identity `pid@host`, the SDK's default), its process is still alive: a `predict`
// that exited a moment ago must not be mistaken for a worker.
import type { Client } from '@temporalio/client';
import * as os from 'node:os';

// temporal.api.enums.v1.TaskQueueType
const QUEUE_TYPES = { workflow: 1, activity: 2 } as const;
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

/** `kind`: the pollers of workflow tasks (the cpu queue's workers) or of activity tasks (device queues). */
export async function queueIsServed(client: Client, namespace: string, queue: string, kind: keyof typeof QUEUE_TYPES = 'workflow'): Promise<boolean> {
  const response = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: queue }, taskQueueType: QUEUE_TYPES[kind] });
  const now = Date.now();
  return (response.pollers ?? []).some((poller) => {
    const seconds = Number(poller.lastAccessTime?.seconds ?? 0);
    return now - seconds * 1000 < FRESH_MS && plausiblyServing(poller.identity ?? '');
  });
}
