// Run identity: a run's workflow id is derived from what defines it (pipeline, input
// fingerprints, parameters), so running the same command again finds the same run.
import { createHash } from 'node:crypto';
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { RUN_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { UsageError } from './args';

/** Memo stored on every run we start: enough to find its directory and name it in listings. */
export interface RunMemo {
  pipeline?: string;
  runDir?: string;
  /** The run's JSON-lines log, when it is not `<runDir>/virnucpro.log`. */
  logFile?: string;
  input?: string;
  sample?: string;
  /** What the workflow records as it goes (workflows/interpreter/run-facts.ts `RunFacts`). */
  progress?: { state?: string; framesDone?: number; framesTotal?: number | null; framesPerSecond?: number | null };
}

export function runMemo(memo: Record<string, unknown> | undefined): RunMemo {
  const pick = (key: string) => (typeof memo?.[key] === 'string' ? (memo[key] as string) : undefined);
  const facts = memo?.virnucpro;
  return {
    pipeline: pick('pipeline'),
    runDir: pick('runDir'),
    logFile: pick('logFile'),
    input: pick('input'),
    sample: pick('sample'),
    progress: facts && typeof facts === 'object' ? (facts as RunMemo['progress']) : undefined,
  };
}

/** JSON with object keys sorted, so equal values always hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function runIdFor(pipeline: string, identity: unknown): string {
  return `${pipeline}-${createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 16)}`;
}

export async function findRun(client: Client, workflowId: string): Promise<{ handle: WorkflowHandle; description: WorkflowExecutionDescription }> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    return { handle, description: await handle.describe() };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new UsageError(`no run '${workflowId}' (see virnucpro list)`);
    throw err;
  }
}

export interface RunRequest {
  pipeline: string;
  /** Whatever makes two runs "the same": input fingerprints and parameters (JSON values). */
  identity: unknown;
  workflowType: string;
  args: unknown[];
  taskQueue: string;
  runDir: string;
  /** Where the run's log goes (`addRunLogFile`'s answer) when not directly in runDir. */
  logFile?: string;
  /** Start a fresh run even when one exists (a running one is terminated). */
  force: boolean;
  /** More memo fields (what the Web UI shows on the run's page). */
  memo?: Record<string, unknown>;
  /** Search attributes set at the start (only ones the server has registered). */
  searchAttributes?: TypedSearchAttributes;
}

export interface StartedRun {
  handle: WorkflowHandle;
  workflowId: string;
  runId: string;
  /** true: an existing run (running or completed) was found and is being followed. */
  attached: boolean;
  /** The attached run has already completed: its result is there, nothing needs workers. */
  completed: boolean;
}

/**
 * Starts the run, or attaches to the existing run with the same identity when it is running or
 * completed. A failed, cancelled or terminated run is started again under the same id; the
 * step cache makes its completed steps hits, so only the rest is computed.
 */
export async function startOrAttach(client: Client, request: RunRequest): Promise<StartedRun> {
  const workflowId = runIdFor(request.pipeline, request.identity);
  let existing: WorkflowExecutionDescription | undefined;
  try {
    existing = await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  const reusable = existing && (existing.status.name === 'RUNNING' || existing.status.name === 'COMPLETED');
  if (existing && reusable && !request.force) {
    return { handle: client.workflow.getHandle(workflowId, existing.runId), workflowId, runId: existing.runId, attached: true, completed: existing.status.name === 'COMPLETED' };
  }
  const handle = await client.workflow.start(request.workflowType, {
    workflowId,
    taskQueue: request.taskQueue,
    args: request.args,
    memo: { ...request.memo, pipeline: request.pipeline, runDir: request.runDir, ...(request.logFile ? { logFile: request.logFile } : {}) },
    ...(request.searchAttributes ? { typedSearchAttributes: request.searchAttributes } : {}),
    workflowIdConflictPolicy: request.force ? 'TERMINATE_EXISTING' : 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
  });
  const runId = handle.firstExecutionRunId;
  return { handle: client.workflow.getHandle(workflowId, runId), workflowId, runId, attached: false, completed: false };
}

/** Whether the server knows every run search attribute (the embedded one registers them at start). */
export async function hasRunSearchAttributes(client: Client, namespace: string): Promise<boolean> {
  try {
    const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace });
    return Object.values(RUN_SEARCH_ATTRIBUTES).every((key) => key.name in (customAttributes ?? {}));
  } catch {
    return false; // a server that does not answer this (or refuses it) simply does without
  }
}

/** The static search attributes of a run: its sample and input, and that it runs. */
export function runSearchAttributes(sample: string, input: string): TypedSearchAttributes {
  const keys = RUN_SEARCH_ATTRIBUTES;
  return new TypedSearchAttributes([
    { key: keys.sample, value: sample },
    { key: keys.input, value: input },
    { key: keys.state, value: 'running' },
  ]);
}
