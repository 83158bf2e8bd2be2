// Real processes for CLI tests: `node dist/cli/main.js` with its own state directory and a
// config file that puts the embedded Temporal dev server on free ports, so tests never touch
// the user's state or a server on the default port.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');
const mainJs = path.join(repoRoot, 'dist', 'cli', 'main.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `virnucpro` process whose output is collected as it comes. */
export class CliProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliResult>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr })));
  }

  /** Resolves once `pattern` appears on stdout or stderr; rejects if the process ends first. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void this.exited.then(() => (ended = true));
    for (;;) {
      const match = (this.stdout + this.stderr).match(pattern);
      if (match) return match;
      if (ended) throw new Error(`process ended before ${pattern} appeared:\n${this.stdout}\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${this.stdout}\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The process, or its whole process group when it was spawned with a prefix (its own group). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      this.child.kill(signal);
    }
  }
}

const sharedBundles = path.join(os.tmpdir(), `virnucpro-test-bundles-${process.pid}`);
process.on('exit', () => fs.rmSync(sharedBundles, { recursive: true, force: true }));

/** An isolated virnucpro environment: state directory, config file, dev server on free ports. */
export class CliEnvironment {
  readonly env: NodeJS.ProcessEnv;
  readonly processes: CliProcess[] = [];

  private constructor(
    readonly dir: string,
    readonly port: number,
    /** The dev server's Web UI port, 0 when the UI is off (the default for tests). */
    readonly uiPort: number,
    /** The address the dev server listens on (another host's workers reach it there). */
    readonly ip: string,
  ) {
    const configFile = path.join(dir, 'virnucpro.yml');
    fs.writeFileSync(configFile, `dev_server:\n  ip: ${ip}\n  port: ${port}\n  ui_port: ${uiPort}\n  log_level: error\n`);
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: path.join(dir, 'state'), VIRNUCPRO_CONFIG: configFile };
    for (const key of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CA']) delete env[key];
    this.env = env;
  }

  static async create(options: { webUi?: boolean; ip?: string } = {}): Promise<CliEnvironment> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virnucpro-cli-'));
    const environment = new CliEnvironment(dir, await freePort(), options.webUi ? await freePort() : 0, options.ip ?? '127.0.0.1');
    // Environments of one test process share the workflow bundle cache (keyed by content), so
    // webpack runs once per test process rather than once per environment.
    fs.mkdirSync(sharedBundles, { recursive: true });
    fs.mkdirSync(environment.stateDir, { recursive: true });
    fs.symlinkSync(sharedBundles, path.join(environment.stateDir, 'bundles'));
    return environment;
  }

  get stateDir(): string {
    return path.join(this.dir, 'state', 'virnucpro');
  }

  /** `prefix`: a command that runs the CLI, e.g. `ip netns exec HOST` to run it on another "host". */
  spawn(args: string[], extraEnv: NodeJS.ProcessEnv = {}, prefix: string[] = []): CliProcess {
    const [command, ...rest] = [...prefix, process.execPath, mainJs, ...args];
    const child = spawn(command, rest, { env: { ...this.env, ...extraEnv }, cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'], detached: prefix.length > 0 });
    const proc = new CliProcess(child);
    this.processes.push(proc);
    return proc;
  }

  async run(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return this.spawn(args, extraEnv).exited;
  }

  /** The dev server's pid as recorded by the CLI, if one of ours is recorded. */
  serverPid(): number | undefined {
    try {
      return (JSON.parse(fs.readFileSync(path.join(this.stateDir, 'server.json'), 'utf8')) as { pid: number }).pid;
    } catch {
      return undefined;
    }
  }

  /** Kills every process this environment started, then the dev server, then removes the files. */
  async dispose(): Promise<void> {
    for (const proc of this.processes) proc.kill('SIGKILL');
    await Promise.all(this.processes.map((p) => p.exited));
    const pid = this.serverPid();
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
