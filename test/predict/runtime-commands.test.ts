// `virnucpro embed` and `virnucpro benchmark` hand their arguments to the runtime's own commands.
import { strict as assert } from 'node:assert';
import { CliEnvironment } from '../cli/harness';

describe('virnucpro embed / benchmark (runtime commands)', function () {
  this.timeout(60_000);
  let env: CliEnvironment;
  before(async () => {
    env = await CliEnvironment.create();
  });
  after(async () => env.dispose());

  it('passes arguments through and returns the runtime command’s exit status', async () => {
    // One call (each starts Python and imports torch): a bad choice must reach the runtime's
    // parser and its exit status (argparse: 2) must come back.
    const embed = await env.run(['embed', '--model', 'nope', '--in', 'x.arrow', '--out', 'y.arrow']);
    assert.equal(embed.code, 2, embed.stderr);
    assert.match(embed.stderr, /python -m virnucpro_runtime embed.*\n?.*--model: invalid choice: 'nope'/s);
  });
});
