// Where `predict` finds its weights: the weights folder, then the Hugging Face and torch hub
// caches the runtime looks in (asked of the real runtime, gpu-runtime/virnucpro_runtime/weight_caches.py),
// on fake cache folders.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UsageError } from '../../cli/args';
import { resolveWeights } from '../../cli/commands/predict-weights';

describe('predict: finding the weights', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const hfSnapshot = (repo: string, revision: string) => {
    const snapshot = path.join(dir, 'hf', 'hub', `models--${repo.replace('/', '--')}`, 'snapshots', revision);
    fs.mkdirSync(snapshot, { recursive: true });
    fs.writeFileSync(path.join(snapshot, 'config.json'), '{}');
    return snapshot;
  };
  const file = (...parts: string[]) => {
    const at = path.join(dir, ...parts);
    fs.mkdirSync(path.dirname(at), { recursive: true });
    fs.writeFileSync(at, '');
    return at;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virnucpro-weights-'));
    env = { ...process.env, VIRNUCPRO_WEIGHTS: path.join(dir, 'weights'), HF_HOME: path.join(dir, 'hf'), TORCH_HOME: path.join(dir, 'torch') };
    for (const name of ['HF_HUB_CACHE', 'XDG_CACHE_HOME']) delete env[name];
    file('weights', '500_model.pth');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('takes ESM-2 and DNABERT-S from the Hugging Face cache when the weights folder lacks them', () => {
    const esm2 = hfSnapshot('facebook/esm2_t36_3B_UR50D', '0123abc');
    const dnabert = hfSnapshot('zhihan1996/DNABERT-S', 'fedcba9');
    assert.deepEqual(resolveWeights({ modelType: '500' }, env), { classifier: path.join(dir, 'weights', '500_model.pth'), esm2, dnabert });
  });

  it('takes the fair-esm file from the torch hub cache, and the weights folder first', () => {
    const esm2 = file('torch', 'hub', 'checkpoints', 'esm2_t36_3B_UR50D.pt');
    const inFolder = file('weights', 'DNABERT-S', 'config.json');
    hfSnapshot('zhihan1996/DNABERT-S', 'fedcba9');
    assert.deepEqual(resolveWeights({ modelType: '500' }, env), { classifier: path.join(dir, 'weights', '500_model.pth'), esm2, dnabert: path.dirname(inFolder) });
  });

  it('names every place it looked when weights are nowhere', () => {
    assert.throws(
      () => resolveWeights({ modelType: '500' }, env),
      (error: unknown) => {
        assert.ok(error instanceof UsageError);
        for (const place of [
          path.join(dir, 'weights', 'esm2_t36_3B_UR50D.pt'),
          path.join(dir, 'hf', 'hub', 'models--facebook--esm2_t36_3B_UR50D', 'snapshots'),
          path.join(dir, 'torch', 'hub', 'checkpoints', 'esm2_t36_3B_UR50D.pt'),
          path.join(dir, 'weights', 'DNABERT-S'),
          path.join(dir, 'hf', 'hub', 'models--zhihan1996--DNABERT-S', 'snapshots'),
        ]) {
          assert.ok(error.message.includes(place), `${place} in:\n${error.message}`);
        }
        return true;
      },
    );
  });
});
