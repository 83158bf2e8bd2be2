// The `virnucpro` command: a registry of subcommands, each in its own module under commands/,
// loaded only when used so `virnucpro --help` and quick commands start fast.
// Exit status: 0 success, 1 failure, 2 usage or input error.
import { UsageError } from './args';
import { packageRoot } from './config';

interface CommandEntry {
  summary: string;
  run(argv: string[]): Promise<number>;
}

/** Adding a command is one line here plus its module under commands/. */
const commands: Record<string, CommandEntry> = {
  predict: { summary: 'classify reads as viral or not (VirNucPro)', run: async (a) => (await import('./commands/predict')).run(a) },
  embed: { summary: "the runtime's embed command (python -m virnucpro_runtime embed ...)", run: async (a) => (await import('./commands/runtime-passthrough')).runtimeCommand('embed')(a) },
  benchmark: { summary: "the runtime's benchmark (python -m virnucpro_runtime bench ...)", run: async (a) => (await import('./commands/runtime-passthrough')).runtimeCommand('bench')(a) },
  selftest: { summary: 'run the built-in selftest pipeline end to end (checks Temporal, workers, devices)', run: async (a) => (await import('./commands/selftest')).run(a) },
  status: { summary: 'show a run: steps done/running/failed/cached, per-device progress', run: async (a) => (await import('./commands/status')).run(a) },
  list: { summary: 'list runs', run: async (a) => (await import('./commands/list')).run(a) },
  logs: { summary: "print a run's log and a summary of its workflow history", run: async (a) => (await import('./commands/logs')).run(a) },
  replay: { summary: 'run the failed steps of a failed run again, keeping completed ones', run: async (a) => (await import('./commands/replay')).run(a) },
  cancel: { summary: 'cancel a run', run: async (a) => (await import('./commands/cancel')).run(a) },
  worker: { summary: "serve this host's CPU queue and one GPU queue per local device", run: async (a) => (await import('./commands/worker')).run(a) },
  server: { summary: 'start, stop or inspect the embedded Temporal server', run: async (a) => (await import('./commands/server')).run(a) },
  translate: { summary: "cut and six-frame translate reads, writing the original's intermediate files", run: async (a) => (await import('./commands/translate')).run(a) },
  dag: { summary: 'draw a pipeline as a Mermaid or Graphviz graph', run: async (a) => (await import('./commands/dag')).run(a) },
};

/** The message and its causes: Temporal wraps the interesting part (an activity's error) inside. */
function describeError(err: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = err; e && messages.length < 4; e = (e as { cause?: unknown }).cause) {
    const message = e instanceof Error ? e.message : String(e);
    if (message && !messages.includes(message)) messages.push(message);
  }
  return messages.join(': ') || String(err);
}

function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(`${packageRoot}/package.json`) as { version: string }).version;
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, entry]) => `  ${name.padEnd(width)}  ${entry.summary}`);
  return [
    'Usage: virnucpro COMMAND [options]',
    '',
    'Fast, durable VirNucPro viral read identification on one or many GPUs.',
    '',
    'Commands:',
    ...lines,
    '',
    "Run 'virnucpro COMMAND --help' for a command's options.",
    'Temporal: the embedded dev server (temporal-dev.yml) unless TEMPORAL_ADDRESS or -c FILE names a cluster.',
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`virnucpro ${version()}\n`);
    return 0;
  }
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!entry) {
    process.stderr.write(`virnucpro: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await entry.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`virnucpro ${name}: ${err.message}\n`);
      return 2;
    }
    const verbose = rest.includes('-v') || rest.includes('--verbose');
    process.stderr.write(`virnucpro ${name}: ${verbose && err instanceof Error ? err.stack : describeError(err)}\n`);
    return 1;
  }
}

// Runs on load: this module is the program, whether started as dist/cli/main.js or via bin/virnucpro.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`virnucpro: ${String(err)}\n`);
    process.exit(1);
  },
);
