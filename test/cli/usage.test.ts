// Manners: help, exit status 2 for usage errors with a readable message, drawings of pipelines.
// None of these needs Temporal.
import * as assert from 'node:assert/strict';
import { CliEnvironment } from './harness';

describe('cli: usage and help', function () {
  this.timeout(60_000);
  let env: CliEnvironment;

  before(async () => {
    env = await CliEnvironment.create();
  });
  after(async () => env.dispose());

  it('lists the commands with --help (exit 0) and without arguments (exit 2)', async () => {
    const help = await env.run(['--help']);
    assert.equal(help.code, 0);
    for (const command of ['predict', 'status', 'list', 'logs', 'replay', 'cancel', 'worker', 'server', 'dag', 'selftest']) {
      assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'));
    }
    assert.equal((await env.run([])).code, 2);
  });

  it('answers usage errors with exit 2 and a message naming the problem', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['list', '--bogus'], /unknown option --bogus/],
      [['list', '--limit', 'many'], /--limit:/],
      [['logs'], /missing RUN/],
      [['server', 'explode'], /ACTION/],
      [['dag', 'nope'], /unknown pipeline 'nope'/],
      [['dag', 'selftest', '--format', 'png'], /--format:/],
      [['selftest', '--devices', 'x'], /--devices: 'x' is not a device index/],
      [['status', 'a', 'b'], /unexpected argument 'b'/],
    ];
    const results = await Promise.all(cases.map(([args]) => env.run(args)));
    for (const [i, [args, message]] of cases.entries()) {
      const result = results[i];
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('prints per-command help', async () => {
    const help = await env.run(['worker', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: virnucpro worker \[options\]/);
    assert.match(help.stdout, /--devices LIST/);
  });

  it('draws a pipeline in both formats', async () => {
    const mermaid = await env.run(['dag', 'selftest']);
    assert.equal(mermaid.code, 0, mermaid.stderr);
    assert.match(mermaid.stdout, /^(flowchart|graph) /);
    assert.match(mermaid.stdout, /digest/);
    const dot = await env.run(['dag', 'selftest', '--format', 'dot']);
    assert.equal(dot.code, 0, dot.stderr);
    assert.match(dot.stdout, /^digraph /);
  });
});
