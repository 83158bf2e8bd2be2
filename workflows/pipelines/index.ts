// Pipelines by name, for `virnucpro dag PIPELINE` and `virnucpro selftest`.
import type { Dag } from '../dsl/types';
import { selftest } from './selftest';
import { defaultVirnucproSettings, virnucproPipeline } from './virnucpro';

export const pipelines: Record<string, Dag> = {
  selftest,
  // `predict` builds its own instance with the run's settings; this one is for `virnucpro dag`.
  virnucpro: virnucproPipeline(defaultVirnucproSettings),
};

export function getPipeline(name: string): Dag {
  const dag = pipelines[name];
  if (!dag) throw new Error(`unknown pipeline "${name}" (known: ${Object.keys(pipelines).join(', ')})`);
  return dag;
}
