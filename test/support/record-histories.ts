// Records histories of real runs for the replay test (test/workflows/replay.test.ts):
//   npm run build && node dist/test/support/record-histories.js
// Runs the selftest pipeline (a device joins by signal mid-run), a gpu scatter over a fast and a
// slow device, and a cpu scatter split into child batch workflows against a fresh dev server, and writes every workflow's history to
// test/histories/<label>.json. Re-record after an intentional, patched workflow change and keep
// the old files so in-flight runs of the old code stay covered; delete them only together with
// the patched() branches they need.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActivityRegistry } from '../../activities/registry';
import { selftestImplementations } from '../../activities/selftest/implementations';
import { definePipeline } from '../../workflows/dsl/define';
import { runPipeline } from '../../workflows/interpreter/run-pipeline';
import { deviceJoinedSignal, progressQuery } from '../../workflows/interpreter/messages';
import { selftest } from '../../workflows/pipelines/selftest';
import { cpuQueue } from '../../workflows/queues';
import { testImplementations } from './test-implementations';
import { toHistoryFile } from './histories';
import { repoRoot, startTemporal } from './temporal';
import { startWorkers } from './workers';

const historiesDir = join(repoRoot, 'test', 'histories');

async function main(): Promise<void> {
  const label = process.argv[2] ?? new Date().toISOString().slice(0, 10);
  const env = await startTemporal();
  const devices = ['rec.gpu0', 'rec.gpu1'];
  const workers = await startWorkers(env, { registry: new ActivityRegistry([...selftestImplementations, ...testImplementations]), devices });
  const workDir = await mkdtemp(join(tmpdir(), 'virnucpro-record-'));
  try {
    const selftestRun = await env.client.workflow.start(runPipeline, {
      taskQueue: cpuQueue(workers.prefix),
      workflowId: `selftest-${label}`,
      args: [{ dag: selftest, inputs: { settings: { files: 6, lines: 16, sleepMs: 400 } }, workDir, taskQueuePrefix: workers.prefix, devices: [devices[0]], options: { progressIntervalMs: 200 } }],
    });
    await new Promise((resolve) => setTimeout(resolve, 800));
    await selftestRun.signal(deviceJoinedSignal, { device: devices[1] });
    await selftestRun.query(progressQuery);
    await selftestRun.result();

    const fan = definePipeline({
      name: 'fan',
      inputs: { count: 'number' },
      processes: {
        range: { implementation: 'test.range', resource: 'cpu', inputs: { count: { from: 'inputs.count', type: 'number' } }, outputs: { numbers: 'number[]' } },
        double: { implementation: 'test.work', resource: 'cpu', params: { ms: 50 }, inputs: { n: { from: 'range.numbers', type: 'number', mode: 'scatter' } }, outputs: { doubled: 'number' } },
        total: { implementation: 'test.sum', resource: 'cpu', inputs: { values: { from: 'double.doubled', type: 'number[]', mode: 'gather' } }, outputs: { total: 'number' } },
      },
      outputs: { total: 'total.total' },
    });
    const fanId = `fan-${label}`;
    const fanRun = await env.client.workflow.start(runPipeline, {
      taskQueue: cpuQueue(workers.prefix),
      workflowId: fanId,
      args: [{ dag: fan, inputs: { count: 12 }, workDir, taskQueuePrefix: workers.prefix, devices: [], options: { scatterBatchSize: 5, maxConcurrentBatches: 2, scatterConcurrency: 2, progressIntervalMs: 1 } }],
    });
    await fanRun.result();

    // A slow and a fast device: the tail of the scatter exercises the pool's rebalancing.
    const balance = definePipeline({
      name: 'balance',
      inputs: { numbers: 'number[]' },
      processes: {
        work: {
          implementation: 'test.work',
          resource: 'gpu',
          cache: false,
          params: { ms: 200, slowdown: { [devices[1]]: 3 } },
          timeouts: { startToClose: '1m', heartbeat: '5s' },
          inputs: { n: { from: 'inputs.numbers', type: 'number', mode: 'scatter' } },
          outputs: { doubled: 'number' },
        },
      },
      outputs: { doubled: 'work.doubled' },
    });
    const balanceId = `balance-${label}`;
    await env.client.workflow.execute(runPipeline, {
      taskQueue: cpuQueue(workers.prefix),
      workflowId: balanceId,
      args: [{ dag: balance, inputs: { numbers: [1, 2, 3, 4, 5, 6, 7, 8, 9] }, workDir, taskQueuePrefix: workers.prefix, devices }],
    });

    const ids = [`selftest-${label}`, balanceId, fanId, ...[0, 1, 2].map((batch) => `${fanId}/double/batch-${batch}`)];
    for (const id of ids) {
      const history = await env.client.workflow.getHandle(id).fetchHistory();
      const file = join(historiesDir, `${id.replace(/\//g, '__')}.json`);
      await writeFile(file, JSON.stringify(toHistoryFile(id, history)) + '\n');
      console.log(`recorded ${file} (${history.events?.length ?? 0} events)`);
    }
  } finally {
    await workers.stop();
    await env.teardown();
    await rm(workDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
