// Which local devices this host serves: --devices wins, then CUDA_VISIBLE_DEVICES, then
// nvidia-smi. A host without GPUs serves one CPU "device" (index 0) so gpu steps still run,
// slowly, with the same code path (the runtime runs on CPU).
import { execFileSync } from 'node:child_process';
import { UsageError } from './args';

export interface LocalDevice {
  /** Index in the order the host sees it (CUDA ordinal, or 0.. for CPU devices). */
  index: number;
  kind: 'cuda' | 'cpu';
  name: string;
  /** What to set CUDA_VISIBLE_DEVICES to for this device's runtime (undefined for CPU). */
  cudaVisible?: string;
}

export interface DeviceDiscovery {
  devices: LocalDevice[];
  /** Where the list came from, for the log. */
  source: string;
}

function parseIndexList(text: string, what: string): number[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  const indices = items.map((item) => {
    if (!/^\d+$/.test(item)) throw new UsageError(`${what}: '${item}' is not a device index (expected e.g. 0,1,3)`);
    return Number(item);
  });
  if (new Set(indices).size !== indices.length) throw new UsageError(`${what}: a device is listed twice`);
  return indices;
}

function cpuDevices(count: number): LocalDevice[] {
  return Array.from({ length: count }, (_, index) => ({ index, kind: 'cpu' as const, name: 'cpu' }));
}

/**
 * Whether any process computes on this host's GPUs now (nvidia-smi's compute apps); null where
 * nvidia-smi cannot say. `predict` loads its models before the Temporal server is up only when
 * this is false: a GPU in use may be another virnucpro worker's, whose planned memory a second
 * set of models could push into out-of-memory retries (and other batches).
 */
export function gpusBusy(query: () => string = () => nvidiaSmiCsv('--query-compute-apps=pid')): boolean | null {
  try {
    return query()
      .split('\n')
      .some((line) => /^\s*\d+\s*$/.test(line));
  } catch {
    return null;
  }
}

/** nvidia-smi's answer to one `--query-...` as headerless CSV; throws where it cannot run. */
function nvidiaSmiCsv(query: string): string {
  return execFileSync('nvidia-smi', [query, '--format=csv,noheader'], { encoding: 'utf8', timeout: 15000, stdio: ['ignore', 'pipe', 'ignore'] });
}

function nvidiaSmi(): LocalDevice[] {
  try {
    const out = nvidiaSmiCsv('--query-gpu=index,name');
    return out
      .split('\n')
      .map((line) => line.split(',').map((s) => s.trim()))
      .filter(([index]) => /^\d+$/.test(index ?? ''))
      .map(([index, name]) => ({ index: Number(index), kind: 'cuda' as const, name: name ?? 'GPU', cudaVisible: index }));
  } catch {
    return [];
  }
}

/**
 * `option`: `0,2` (CUDA devices), `cpu` or `cpu:N` (N CPU devices, for hosts without GPUs and
 * for tests), or undefined to discover.
 */
export function discoverDevices(option: string | undefined, env: NodeJS.ProcessEnv = process.env): DeviceDiscovery {
  if (option !== undefined) {
    const cpu = /^cpu(?::(\d+))?$/.exec(option.trim());
    if (cpu) {
      const count = Number(cpu[1] ?? '1');
      if (count < 1) throw new UsageError('--devices cpu:N needs N >= 1');
      return { devices: cpuDevices(count), source: '--devices' };
    }
    const known = new Map(nvidiaSmi().map((d) => [d.index, d.name]));
    return {
      devices: parseIndexList(option, '--devices').map((index) => ({ index, kind: 'cuda', name: known.get(index) ?? 'GPU', cudaVisible: String(index) })),
      source: '--devices',
    };
  }
  const visible = env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined && visible.trim() !== '') {
    // Inside a mask the devices are numbered 0..n-1; each runtime gets the original id back.
    const ids = visible.split(',').map((s) => s.trim()).filter(Boolean);
    if (ids.length === 0 || ids[0] === '-1') return { devices: cpuDevices(1), source: 'CUDA_VISIBLE_DEVICES (none visible: CPU)' };
    return { devices: ids.map((id, index) => ({ index, kind: 'cuda', name: `GPU ${id}`, cudaVisible: id })), source: 'CUDA_VISIBLE_DEVICES' };
  }
  const found = nvidiaSmi();
  if (found.length) return { devices: found, source: 'nvidia-smi' };
  return { devices: cpuDevices(1), source: 'no GPU found: CPU' };
}
