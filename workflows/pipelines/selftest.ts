// The built-in pipeline users run to check a cluster: cpu steps, a gpu scatter with heartbeats,
// an independent cpu step running beside it, and a gather. The work is real (files written,
// hashed, verified) but needs no models.
import { definePipeline } from '../dsl/define';

export const selftest = definePipeline({
  name: 'selftest',
  version: '1',
  description: 'Cluster check: generate files (cpu), hash each on a gpu worker (scatter), measure them (cpu), combine (gather)',
  inputs: { settings: 'selftest.settings' },
  processes: {
    generate: {
      implementation: 'selftest.generate',
      resource: 'cpu',
      inputs: { settings: { from: 'inputs.settings', type: 'selftest.settings' } },
      outputs: { files: 'file[]' },
      timeouts: { startToClose: '5m' },
    },
    digest: {
      implementation: 'selftest.digest',
      resource: 'gpu',
      inputs: {
        file: { from: 'generate.files', type: 'file', mode: 'scatter' },
        settings: { from: 'inputs.settings', type: 'selftest.settings' },
      },
      outputs: { digest: 'file' },
      retry: { maximumAttempts: 3 },
      timeouts: { startToClose: '10m', heartbeat: '10s' },
    },
    measure: {
      implementation: 'selftest.measure',
      resource: 'cpu',
      inputs: { files: { from: 'generate.files', type: 'file[]' } },
      outputs: { summary: 'selftest.summary' },
      timeouts: { startToClose: '5m' },
    },
    combine: {
      implementation: 'selftest.combine',
      resource: 'cpu',
      inputs: {
        digests: { from: 'digest.digest', type: 'file[]', mode: 'gather' },
        summary: { from: 'measure.summary', type: 'selftest.summary' },
      },
      outputs: { report: 'file' },
      timeouts: { startToClose: '5m' },
    },
  },
  outputs: { report: 'combine.report' },
});
