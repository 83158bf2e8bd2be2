// One winston logger per process: readable lines on stderr (stdout stays for command output),
// JSON lines in the run directory's log file once a run is known. Temporal's own SDK logs are
// routed through it too, one level down, so the terminal stays quiet unless -v is given.
import * as path from 'node:path';
import * as fs from 'node:fs';
import winston from 'winston';
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

export const RUN_LOG_FILE = 'virnucpro.log';

export interface Verbosity {
  verbose: boolean;
  quiet: boolean;
}

const readable = winston.format.printf((info) => {
  const { level, message, timestamp, ...meta } = info as Record<string, unknown>;
  const extra = Object.entries(meta)
    .filter(([key]) => typeof key === 'string')
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${String(timestamp).slice(11, 19)} ${level} ${String(message)}${extra ? ' ' + extra : ''}`;
});

export function createLogger(verbosity: Verbosity): winston.Logger {
  const level = verbosity.verbose ? 'debug' : verbosity.quiet ? 'warn' : 'info';
  const formats = [winston.format.timestamp(), ...(process.stderr.isTTY ? [winston.format.colorize()] : []), readable];
  return winston.createLogger({
    level: 'debug',
    transports: [new winston.transports.Console({ level, stderrLevels: Object.keys(winston.config.npm.levels), format: winston.format.combine(...formats) })],
  });
}

const runLogs = new Set<string>();

/** Adds the run's JSON-lines log file (idempotent per file); returns its path. */
export function addRunLogFile(logger: winston.Logger, runDir: string): string {
  const filename = path.join(runDir, RUN_LOG_FILE);
  if (!runLogs.has(filename)) {
    runLogs.add(filename);
    fs.mkdirSync(runDir, { recursive: true });
    logger.add(new winston.transports.File({ filename, level: 'verbose', format: winston.format.combine(winston.format.timestamp(), winston.format.json()) }));
  }
  return filename;
}

const temporalToWinston: Record<LogLevel, string> = { TRACE: 'silly', DEBUG: 'debug', INFO: 'verbose', WARN: 'warn', ERROR: 'error' };

let runtimeInstalled = false;

/** Routes the Temporal SDK's worker logs into our logger; must run before any worker exists. */
export function routeTemporalLogs(logger: winston.Logger): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new DefaultLogger('INFO', (entry) => {
      // Device-queue workers run activities only; the SDK warns about that on every start.
      const expected = entry.message.startsWith('No workflows registered');
      logger.log(expected ? 'debug' : temporalToWinston[entry.level], entry.message, { source: 'temporal', ...(entry.meta ?? {}) });
    }),
  });
}

/**
 * Waits until everything logged so far has reached the run's log file, then detaches the file.
 * The logger itself stays usable (terminal only): Temporal's SDK may still log while it winds
 * down, and a logger that was ended would throw on those late lines.
 */
export async function flushLogs(logger: winston.Logger): Promise<void> {
  const files = logger.transports.filter((t) => t instanceof winston.transports.File);
  await Promise.all(
    files.map(
      (transport) =>
        new Promise<void>((resolve) => {
          transport.once('finish', () => resolve());
          logger.remove(transport);
          transport.end();
          setTimeout(resolve, 2000).unref();
        }),
    ),
  );
  runLogs.clear();
}
