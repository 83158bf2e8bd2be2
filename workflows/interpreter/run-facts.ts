// The run's facts in its memo and search attributes, readable with no worker up (workflow code).
import { upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { Dag } from '../dsl/types';
import { RUN_SEARCH_ATTRIBUTES } from '../search-attributes';
import type { ProgressTracker } from './progress';

/**
 * What the run shows without a query (so the Web UI's list, `temporal workflow list` and the CLI
 * can read it even with no worker up): its pipeline, state and frames (the gpu steps' units) in
 * the memo, and, where the server has them, in the search attributes. Recorded at the start, at
 * every gpu task's end and at the end.
 */
export class RunFacts {
  private gpuStartedAt: number | null = null;

  constructor(
    private readonly dag: Dag,
    private readonly progress: ProgressTracker,
    private readonly searchAttributes: boolean,
  ) {}

  gpuStarted(): void {
    this.gpuStartedAt ??= Date.now();
  }

  record(state: 'running' | 'completed' | 'failed'): void {
    const gpuSteps = this.dag.processes.filter((p) => p.resource === 'gpu').map((p) => this.progress.step(p.name));
    const framesDone = gpuSteps.reduce((sum, s) => sum + s.unitsDone, 0);
    const totals = gpuSteps.map((s) => s.unitsTotal);
    const framesTotal = totals.length > 0 && totals.every((t) => t !== null) ? totals.reduce<number>((sum, t) => sum + t!, 0) : null;
    const seconds = this.gpuStartedAt === null ? 0 : (Date.now() - this.gpuStartedAt) / 1000;
    const framesPerSecond = seconds > 0 ? Math.round((10 * framesDone) / seconds) / 10 : null;
    upsertMemo({ virnucpro: { pipeline: this.dag.name, version: this.dag.version, state, framesDone, framesTotal, framesPerSecond } });
    if (!this.searchAttributes) return;
    const keys = RUN_SEARCH_ATTRIBUTES;
    upsertSearchAttributes([
      { key: keys.state, value: state },
      { key: keys.framesDone, value: framesDone },
      ...(framesTotal === null ? [] : [{ key: keys.framesTotal, value: framesTotal }]),
    ]);
  }
}
