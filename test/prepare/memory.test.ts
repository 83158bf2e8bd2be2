// Memory stays flat with input size: the same generated reads, 10x more of them, streamed
// through reader + chunking + translation in a child process (nothing stored on disk).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

interface ChildReport {
  megabytes: number;
  bases: number;
  frames: number;
  seconds: number;
  peakRssMiB: number;
  maxLiveHeapMiB: number;
}

function stream(megabytes: number): ChildReport {
  const output = execFileSync(process.execPath, ['--expose-gc', join(__dirname, 'memory-child.js'), String(megabytes)], {
    encoding: 'utf8',
  });
  return JSON.parse(output) as ChildReport;
}

describe('prepare: memory is flat with input size', function () {
  this.timeout(300_000);

  it('peak RSS and live heap barely move from 200 MB to 2 GB of reads', () => {
    const small = stream(200);
    const large = stream(2000);
    const report = `200 MB: ${JSON.stringify(small)}\n2 GB: ${JSON.stringify(large)}`;
    assert.ok(large.bases > 9 * small.bases && large.frames > 9 * small.frames, report);
    // A leak of per-record or per-frame data would add hundreds of MB (the frames alone are
    // ~1.1 GB of text at 2 GB); what may grow is the id set (~50 bytes per 50 kb record).
    assert.ok(large.maxLiveHeapMiB - small.maxLiveHeapMiB < 8, report);
    assert.ok(large.peakRssMiB - small.peakRssMiB < 32, report);
  });
});
