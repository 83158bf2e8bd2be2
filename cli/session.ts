// What every Temporal-using command opens first: settings, the logger, the server lease (the
// embedded server is started if needed) and a client; `close` undoes it in the right order.
// Ctrl-C (SIGINT/SIGTERM) also closes it, so an interrupted command never leaves behind an
// embedded server nobody uses; the run itself stays in Temporal and the same command resumes it.
import type { Client } from '@temporalio/client';
import type winston from 'winston';
import type { CommonOptions } from './args';
import { loadSettings, type Settings } from './config';
import { connectClient } from './connection';
import { createLogger, flushLogs } from './logging';
import { acquireServer, type ServerLease } from './temporal-server';

export interface Session {
  settings: Settings;
  logger: winston.Logger;
  client: Client;
  close(): Promise<void>;
}

export interface SessionOptions {
  /** false for commands that handle SIGINT/SIGTERM themselves (the worker's clean stop). */
  exitOnInterrupt?: boolean;
}

const EXIT_STATUS: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export async function openSession(options: CommonOptions, { exitOnInterrupt = true }: SessionOptions = {}): Promise<Session> {
  const settings = loadSettings(options.config);
  const logger = createLogger(options);
  let lease: ServerLease | undefined;
  try {
    lease = await acquireServer(settings, logger);
    let client: Client;
    try {
      client = await connectClient(settings);
    } catch (err) {
      throw new Error(`cannot reach Temporal at ${settings.address} (namespace ${settings.namespace}): ${(err as Error).message}`);
    }
    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        await client.connection.close().catch(() => undefined);
        await lease?.release();
        await flushLogs(logger);
      })());
    if (exitOnInterrupt) {
      for (const signal of Object.keys(EXIT_STATUS)) {
        process.once(signal, () => {
          logger.warn(`${signal}: stopping; the run stays in Temporal, run the same command again to resume it`);
          void close().finally(() => process.exit(EXIT_STATUS[signal]));
        });
      }
    }
    return { settings, logger, client, close };
  } catch (err) {
    await lease?.release();
    throw err;
  }
}
