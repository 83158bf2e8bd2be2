// One resident runtime process (`python -m virnucpro_runtime serve`) and the JSON-lines
// conversation with it. Replies are matched to requests by id; progress and log events go to
// whoever is listening. If the process dies, every pending request fails with a RuntimeFailure
// that carries the tail of its stderr, so the cause (a Python traceback, an OOM kill) is visible.
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { LogEvent, Operation, operations, PROTOCOL_VERSION, ProgressEvent, RuntimeErrorType, runtimeMessage } from './protocol';

const STDERR_TAIL_LINES = 40;

export class RuntimeFailure extends Error {
  constructor(
    /**
     * A protocol error type, or `exited` when the process died, `stalled` when it stopped answering
     * and was killed, `protocol` for a malformed message.
     */
    readonly type: RuntimeErrorType | 'exited' | 'stalled' | 'protocol',
    message: string,
  ) {
    super(message);
    this.name = 'RuntimeFailure';
  }
}

export interface RuntimeLaunch {
  /** `cpu`, or `cuda` with the physical GPU id to expose as the runtime's only device. */
  kind: 'cpu' | 'cuda';
  cudaVisible?: string;
  /** Seconds between progress events while a shard runs. */
  progressIntervalS?: number;
  /** Where the runtime keeps compiled kernels and converted weights (the CLI's state directory). */
  stateDir?: string;
}

export function defaultPython(): string {
  return process.env.VIRNUCPRO_PYTHON ?? path.resolve(__dirname, '..', '..', '..', '.venv', 'bin', 'python');
}

interface Pending {
  op: Operation;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

export class RuntimeProcess extends EventEmitter<{ progress: [ProgressEvent]; log: [LogEvent]; exit: [string] }> {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<string, Pending>();
  private readonly stderrTail: string[] = [];
  private exitReason: string | null = null;

  constructor(readonly launch: RuntimeLaunch) {
    super();
    const args = ['-m', 'virnucpro_runtime', 'serve', '--device', launch.kind === 'cuda' ? 'cuda:0' : 'cpu'];
    if (launch.progressIntervalS !== undefined) args.push('--progress-interval', String(launch.progressIntervalS));
    // Each runtime sees exactly one GPU (or none), so models and memory stay on its device.
    const env = {
      ...process.env,
      CUDA_VISIBLE_DEVICES: launch.kind === 'cuda' ? launch.cudaVisible ?? '0' : '',
      PYTHONUNBUFFERED: '1',
      ...(launch.stateDir ? { VIRNUCPRO_STATE_DIR: launch.stateDir } : {}),
    };
    const python = defaultPython();
    this.child = spawn(python, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => this.receive(line));
    createInterface({ input: this.child.stderr }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    });
    this.child.on('error', (error) => this.failAll(`could not start ${python} (run scripts/setup.sh, or set VIRNUCPRO_PYTHON): ${error.message}`));
    this.child.on('exit', (code, signal) => this.failAll(`runtime exited (${signal ? `signal ${signal}` : `code ${code}`})`));
    this.child.stdin.on('error', () => undefined); // a dead runtime is reported through 'exit'
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exitReason === null;
  }

  /** The last lines the runtime wrote to stderr (its log). */
  stderr(): string {
    return this.stderrTail.join('\n');
  }

  private failAll(reason: string): void {
    if (this.exitReason !== null) return;
    const tail = this.stderr();
    this.exitReason = tail ? `${reason}; its last log lines:\n${tail}` : reason;
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(new RuntimeFailure('exited', `${pending.op} failed: ${this.exitReason}`));
    }
    this.emit('exit', this.exitReason);
  }

  private receive(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.protocolViolation(`not JSON: ${line.slice(0, 200)}`);
      return;
    }
    const message = runtimeMessage.safeParse(parsed);
    if (!message.success) {
      this.protocolViolation(`${z.prettifyError(message.error)} in ${line.slice(0, 200)}`);
      return;
    }
    const m = message.data;
    if ('event' in m) {
      if (m.event === 'progress') this.emit('progress', m);
      else this.emit('log', m);
      return;
    }
    const pending = m.id === null ? undefined : this.pending.get(m.id);
    if (!pending) {
      // An unparseable request has no id to answer to; fail everything rather than hang.
      if (!m.ok) this.protocolViolation(`runtime rejected a request: ${m.error.type}: ${m.error.message}`);
      return;
    }
    this.pending.delete(m.id!);
    if (!m.ok) {
      pending.reject(new RuntimeFailure(m.error.type, m.error.message));
      return;
    }
    const result = operations[pending.op].result.safeParse(m.result);
    if (result.success) pending.resolve(result.data);
    else pending.reject(new RuntimeFailure('protocol', `malformed ${pending.op} result: ${z.prettifyError(result.error)}`));
  }

  private protocolViolation(problem: string): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(new RuntimeFailure('protocol', `runtime protocol violation: ${problem}`));
    }
  }

  /** Send a request; resolves with its validated result. `id` lets the caller cancel it later. */
  request<Op extends Operation>(
    op: Op,
    args: z.input<(typeof operations)[Op]['args']>,
    id: string = randomUUID(),
  ): Promise<z.infer<(typeof operations)[Op]['result']>> {
    if (this.exitReason !== null) return Promise.reject(new RuntimeFailure('exited', `${op} failed: ${this.exitReason}`));
    const checkedArgs = operations[op].args.parse(args);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { op, resolve: resolve as (r: unknown) => void, reject });
      this.child.stdin.write(`${JSON.stringify({ v: PROTOCOL_VERSION, id, op, args: checkedArgs })}\n`);
    });
  }

  /** Ask for a clean exit; kill it if it does not go within `graceMs`. */
  async shutdown(graceMs = 10_000): Promise<void> {
    if (this.exitReason !== null) return;
    const exited = new Promise<void>((resolve) => this.once('exit', () => resolve()));
    this.request('shutdown', {}).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** For a runtime that stopped answering. */
  kill(): void {
    if (this.exitReason === null) this.child.kill('SIGKILL');
  }
}
