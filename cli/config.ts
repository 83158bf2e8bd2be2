// Where Temporal is and where our state lives. A configured cluster (environment or a -c file)
// wins; otherwise the embedded dev server described by temporal-dev.yml is used.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { UsageError } from './args';

/** The repository (or installed package) root: dist/cli/config.js -> ../.. */
export const packageRoot = path.resolve(__dirname, '..', '..');

const devServerSchema = z.strictObject({
  ip: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  ui_port: z.number().int().min(0).max(65535),
  namespace: z.string().min(1),
  state_file: z.string().min(1),
  log_level: z.enum(['debug', 'info', 'warn', 'error']),
  startup_timeout_s: z.number().positive(),
  dynamic_config: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});
type DevServerFile = z.infer<typeof devServerSchema>;

const userConfigSchema = z.strictObject({
  temporal: z
    .strictObject({
      address: z.string().min(1).optional(),
      namespace: z.string().min(1).optional(),
      ui_url: z.string().url().optional(),
      tls: z
        .strictObject({ cert: z.string().optional(), key: z.string().optional(), ca: z.string().optional(), server_name: z.string().optional() })
        .optional(),
    })
    .optional(),
  dev_server: devServerSchema.partial().optional(),
  state_dir: z.string().optional(),
  task_queue_prefix: z.string().regex(/^[A-Za-z0-9_.-]+$/).optional(),
});

export interface DevServerSettings {
  ip: string;
  port: number;
  uiPort: number;
  namespace: string;
  /** Absolute path of the SQLite file. */
  dbFile: string;
  logLevel: DevServerFile['log_level'];
  startupTimeoutMs: number;
  dynamicConfig: Record<string, string | number | boolean>;
}

export interface TlsFiles {
  cert?: string;
  key?: string;
  ca?: string;
  serverName?: string;
}

export type TemporalTarget =
  | { kind: 'embedded'; server: DevServerSettings }
  | { kind: 'cluster'; address: string; tls?: TlsFiles };

export interface Settings {
  temporal: TemporalTarget;
  address: string;
  namespace: string;
  /** Base of the Web UI, without a trailing slash, when known. */
  uiUrl?: string;
  stateDir: string;
  taskQueuePrefix: string;
}

function readYaml(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read configuration file ${file}: ${(err as Error).message}`);
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    throw new UsageError(`${file} is not valid YAML: ${(err as Error).message}`);
  }
}

function validated<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
  throw new UsageError(`${file}: ${problems.join('; ')}`);
}

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'virnucpro');
}

export function loadSettings(configFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Settings {
  const devFile = path.join(packageRoot, 'temporal-dev.yml');
  const dev = validated(devServerSchema, readYaml(devFile), devFile);
  const userFile = configFile ?? env.VIRNUCPRO_CONFIG;
  const user = userFile ? validated(userConfigSchema, readYaml(userFile), userFile) : {};
  const devMerged: DevServerFile = { ...dev, ...user.dev_server, dynamic_config: { ...dev.dynamic_config, ...user.dev_server?.dynamic_config } };

  const stateDir = path.resolve(user.state_dir ?? defaultStateDir(env));
  const taskQueuePrefix = user.task_queue_prefix ?? 'virnucpro';
  const clusterAddress = env.TEMPORAL_ADDRESS || user.temporal?.address;
  if (clusterAddress) {
    const tlsFiles: TlsFiles = {
      cert: env.TEMPORAL_TLS_CERT || user.temporal?.tls?.cert,
      key: env.TEMPORAL_TLS_KEY || user.temporal?.tls?.key,
      ca: env.TEMPORAL_TLS_CA || user.temporal?.tls?.ca,
      serverName: user.temporal?.tls?.server_name,
    };
    if (Boolean(tlsFiles.cert) !== Boolean(tlsFiles.key)) {
      throw new UsageError('TLS needs both a client certificate and its key (TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY)');
    }
    const useTls = Boolean(tlsFiles.cert || tlsFiles.ca);
    return {
      temporal: { kind: 'cluster', address: clusterAddress, tls: useTls ? tlsFiles : undefined },
      address: clusterAddress,
      namespace: env.TEMPORAL_NAMESPACE || user.temporal?.namespace || 'default',
      uiUrl: (env.TEMPORAL_UI_URL || user.temporal?.ui_url)?.replace(/\/+$/, ''),
      stateDir,
      taskQueuePrefix,
    };
  }
  const server: DevServerSettings = {
    ip: devMerged.ip,
    port: devMerged.port,
    uiPort: devMerged.ui_port,
    namespace: devMerged.namespace,
    dbFile: path.resolve(stateDir, devMerged.state_file),
    logLevel: devMerged.log_level,
    startupTimeoutMs: devMerged.startup_timeout_s * 1000,
    dynamicConfig: devMerged.dynamic_config,
  };
  return {
    temporal: { kind: 'embedded', server },
    address: `${server.ip}:${server.port}`,
    namespace: server.namespace,
    uiUrl: server.uiPort ? `http://${server.ip}:${server.uiPort}` : undefined,
    stateDir,
    taskQueuePrefix,
  };
}

/** The Web UI page of one run, when the UI's address is known. */
export function runUiLink(settings: Settings, workflowId: string, runId?: string): string | undefined {
  if (!settings.uiUrl) return undefined;
  const base = `${settings.uiUrl}/namespaces/${encodeURIComponent(settings.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}
