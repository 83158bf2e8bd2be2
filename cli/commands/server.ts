// `virnucpro server start|stop|status`: the embedded Temporal dev server as an explicit daemon.
// A server started here keeps running after the command exits, until `server stop`.
import * as fs from 'node:fs';
import { z } from 'zod';
import { commonShape, parseCommand, UsageError, type CommandSpec } from '../args';
import { loadSettings } from '../config';
import { createLogger } from '../logging';
import { namespaceReady } from '../connection';
import { EmbeddedServer } from '../temporal-server';

const schema = z.object({ _: z.tuple([z.enum(['start', 'stop', 'status'])]), ...commonShape });

const spec: CommandSpec<z.infer<typeof schema>> = {
  name: 'virnucpro server',
  summary: 'Start, stop or inspect the embedded Temporal dev server (settings: temporal-dev.yml).',
  positionals: [{ name: 'ACTION', help: 'start (as a background daemon), stop, or status' }],
  options: [],
  epilog: [
    'Without `server start`, any virnucpro command starts the server when it needs it and stops it',
    'again when the last virnucpro process using it exits. State (runs) is kept in an SQLite file',
    'in the state directory ($XDG_STATE_HOME/virnucpro or ~/.local/state/virnucpro).',
  ].join('\n'),
  schema,
};

export async function run(argv: string[]): Promise<number> {
  const options = parseCommand(spec, argv);
  if (!options) return 0;
  const settings = loadSettings(options.config);
  if (settings.temporal.kind !== 'embedded') {
    throw new UsageError(`a Temporal cluster is configured (${settings.address}); the embedded server is not used`);
  }
  const server = new EmbeddedServer(settings, createLogger(options));
  const [action] = options._;
  if (action === 'start') {
    const started = await server.ensureRunning(true);
    process.stdout.write(`${started ? 'started' : 'already running'}: ${settings.address} (namespace ${settings.namespace})\n`);
    if (settings.uiUrl) process.stdout.write(`web UI: ${settings.uiUrl}\n`);
    return 0;
  }
  if (action === 'stop') {
    const stopped = await server.stop();
    process.stdout.write(stopped ? 'stopped\n' : 'not running\n');
    return 0;
  }
  const record = server.running();
  const ready = await namespaceReady(settings);
  const dbBytes = fs.existsSync(server.server.dbFile) ? fs.statSync(server.server.dbFile).size : 0;
  const lines = [
    `address:    ${settings.address} (namespace ${settings.namespace}) ${ready ? 'answering' : 'not answering'}`,
    `process:    ${record ? `pid ${record.pid}, ${record.daemon ? 'daemon (until `server stop`)' : 'stops with its last user'}, since ${record.startedAt}` : 'none of ours'}`,
    `users:      ${server.liveUsers().join(' ') || 'none'}`,
    `state file: ${server.server.dbFile} (${(dbBytes / 1e6).toFixed(1)} MB)`,
    `server log: ${server.logFile}`,
  ];
  if (settings.uiUrl) lines.push(`web UI:     ${settings.uiUrl}`);
  process.stdout.write(lines.join('\n') + '\n');
  return ready ? 0 : 1;
}
