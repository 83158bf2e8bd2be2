// Where the tests find the repository and its Python (the runtime's virtual environment).
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');
export const python = process.env.VIRNUCPRO_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python');
