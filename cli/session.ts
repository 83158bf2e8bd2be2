// What every Temporal-using command opens first: settings, the logger, the server lease (the
// embedded server is started if needed) and a client; `close` undoes it in the right order.
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

export async function openSession(options: CommonOptions): Promise<Session> {
  const settings = loadSettings(options.config);
  const logger = createLogger(options);
  let lease: ServerLease | undefined;
  try {
    lease = await acquireServer(settings, logger);
    const client = await connectClient(settings);
    return {
      settings,
      logger,
      client,
      close: async () => {
        await client.connection.close().catch(() => undefined);
        await lease?.release();
        await flushLogs(logger);
      },
    };
  } catch (err) {
    await lease?.release();
    throw err;
  }
}
