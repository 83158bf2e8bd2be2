// `virnucpro embed` and `virnucpro benchmark`: the GPU runtime's own commands
// (`python -m virnucpro_runtime embed|bench`), run with the project's Python so users need not
// know where it lives. Arguments pass through unchanged; the exit status comes back.
import { spawn } from 'node:child_process';
import { defaultPython } from '../../activities/gpu/runtime-process';

export function runtimeCommand(subcommand: string): (argv: string[]) => Promise<number> {
  return (argv) =>
    new Promise((resolve, reject) => {
      const python = defaultPython();
      const child = spawn(python, ['-m', 'virnucpro_runtime', subcommand, ...argv], { stdio: 'inherit' });
      child.on('error', (error) => reject(new Error(`could not start ${python} (run scripts/setup.sh, or set VIRNUCPRO_PYTHON): ${error.message}`)));
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
}
