// Client and worker connections to whichever Temporal the settings name (embedded or cluster).
import * as fs from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Settings, TlsFiles } from './config';

function tlsConfig(files: TlsFiles | undefined): TLSConfig | undefined {
  if (!files) return undefined;
  const read = (file: string | undefined) => (file ? fs.readFileSync(file) : undefined);
  const crt = read(files.cert);
  const key = read(files.key);
  return {
    serverNameOverride: files.serverName,
    serverRootCACertificate: read(files.ca),
    clientCertPair: crt && key ? { crt, key } : undefined,
  };
}

function tlsOf(settings: Settings): TLSConfig | undefined {
  return settings.temporal.kind === 'cluster' ? tlsConfig(settings.temporal.tls) : undefined;
}

export async function connectClient(settings: Settings): Promise<Client> {
  const connection = await Connection.connect({ address: settings.address, tls: tlsOf(settings) });
  return new Client({ connection, namespace: settings.namespace });
}

export async function connectWorker(settings: Settings): Promise<NativeConnection> {
  return NativeConnection.connect({ address: settings.address, tls: tlsOf(settings) });
}

/** True once the front end answers for our namespace (the port alone opens before that). */
export async function namespaceReady(settings: Settings): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address: settings.address, tls: tlsOf(settings), connectTimeout: 2000 });
    await connection.workflowService.describeNamespace({ namespace: settings.namespace });
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}
