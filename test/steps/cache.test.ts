// Step caching across runs (-resume) and marker-based invalidation, with the selftest pipeline
// on a real dev server: a repeated run computes nothing; a missing, emptied or altered output
// file makes exactly the step that produced it run again.
import assert from 'node:assert/strict';
import { readFile, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileRef } from '../../activities/steps/implementation';
import { ActivityRegistry } from '../../activities/registry';
import { selftestImplementations } from '../../activities/selftest/implementations';
import { definePipeline } from '../../workflows/dsl/define';
import { runPipeline } from '../../workflows/interpreter/run-pipeline';
import { ProgressReport, RunPipelineResult } from '../../workflows/interpreter/messages';
import { selftest } from '../../workflows/pipelines/selftest';
import { cpuQueue } from '../../workflows/queues';
import { useHarness } from '../support/harness';
import { journal, testImplementations } from '../support/test-implementations';

const devices = ['cachehost.gpu0', 'cachehost.gpu1'];
const FILES = 4;

/** Per step: [computed, cached]. */
function computedAndCached(progress: ProgressReport): Record<string, [number, number]> {
  return Object.fromEntries(Object.entries(progress.steps).map(([name, step]) => [name, [step.done, step.cached]]));
}

describe('steps: step cache', function () {
  this.timeout(120_000);
  let first: RunPipelineResult;

  const harness = useHarness({ registry: new ActivityRegistry([...selftestImplementations, ...testImplementations]), devices }, 'virnucpro-cache-');

  let runs = 0;
  async function runSelftest(): Promise<RunPipelineResult> {
    return harness.env.client.workflow.execute(runPipeline, {
      taskQueue: cpuQueue(harness.workers.prefix),
      workflowId: `cache-${Date.now()}-${runs++}`,
      args: [{ dag: selftest, inputs: { settings: { files: FILES, lines: 8, sleepMs: 100 } }, workDir: harness.workDir, taskQueuePrefix: harness.workers.prefix, devices }],
    });
  }

  async function digestRefs(result: RunPipelineResult) {
    const report = fileRef.parse(result.outputs.report);
    return { report, content: await readFile(report.path, 'utf8') };
  }

  it('computes every step on the first run', async () => {
    first = await runSelftest();
    assert.deepEqual(computedAndCached(first.progress), { generate: [1, 0], digest: [FILES, 0], measure: [1, 0], combine: [1, 0] });
  });

  it('reuses every validated output on an identical run, with the same outputs', async () => {
    const again = await runSelftest();
    assert.deepEqual(computedAndCached(again.progress), { generate: [0, 1], digest: [0, FILES], measure: [0, 1], combine: [0, 1] });
    assert.deepEqual(again.outputs, first.outputs);
  });

  it('does not call the implementation on a cache hit', async () => {
    const dag = definePipeline({
      name: 'cached-work',
      inputs: { n: 'number' },
      processes: { work: { implementation: 'test.work', resource: 'cpu', params: { ms: 10 }, inputs: { n: { from: 'inputs.n', type: 'number' } }, outputs: { doubled: 'number' } } },
      outputs: { doubled: 'work.doubled' },
    });
    const n = 70_000 + Math.floor(Math.random() * 1000);
    const run = () =>
      harness.env.client.workflow.execute(runPipeline, {
        taskQueue: cpuQueue(harness.workers.prefix),
        workflowId: `cache-work-${Date.now()}-${runs++}`,
        args: [{ dag, inputs: { n }, workDir: harness.workDir, taskQueuePrefix: harness.workers.prefix, devices: [] }],
      });
    const results = [await run(), await run()];
    assert.deepEqual(results.map((r) => r.outputs.doubled), [2 * n, 2 * n]);
    assert.deepEqual(results.map((r) => r.progress.steps.work.cached), [0, 1]);
    assert.equal(journal.filter((e) => e.item === n).length, 1, 'the implementation ran once');
  });

  it('re-runs only the step whose output file went missing', async () => {
    const { content } = await digestRefs(first);
    const digestFile = join(harness.workDir, 'digest');
    const victim = (await findFiles(digestFile)).find((path) => path.endsWith('digest-file-00002.txt'))!;
    await unlink(victim);
    const again = await runSelftest();
    assert.deepEqual(computedAndCached(again.progress), { generate: [0, 1], digest: [1, FILES - 1], measure: [0, 1], combine: [0, 1] });
    assert.equal((await digestRefs(again)).content, content);
  });

  it('re-runs a step whose output file was emptied, and nothing downstream of identical results', async () => {
    const files = (await findFiles(join(harness.workDir, 'generate'))).filter((path) => path.endsWith('file-00001.txt'));
    await truncate(files[0], 0);
    const again = await runSelftest();
    assert.deepEqual(computedAndCached(again.progress), { generate: [1, 0], digest: [0, FILES], measure: [0, 1], combine: [0, 1] });
  });

  it('re-runs a step whose output file has the wrong checksum', async () => {
    const { report, content } = await digestRefs(first);
    const altered = content.replace(/[0-9a-f]/, (c) => (c === '0' ? '1' : '0'));
    assert.equal(altered.length, content.length);
    await writeFile(report.path, altered);
    const again = await runSelftest();
    assert.deepEqual(computedAndCached(again.progress), { generate: [0, 1], digest: [0, FILES], measure: [0, 1], combine: [1, 0] });
    assert.equal((await digestRefs(again)).content, content, 'the re-run restored the true report');
  });
});

async function findFiles(directory: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}
