// Task queue naming, in one place: workers listen on these, the interpreter schedules onto them.

/** Workflows and cpu processes. */
export function cpuQueue(prefix: string): string {
  return `${prefix}.cpu`;
}

/** A device's id, as workers announce it and progress reports it. */
export function deviceId(host: string, index: number): string {
  return `${host}.gpu${index}`;
}

/** One queue per device, so the workflow decides which device runs which task. */
export function gpuQueue(prefix: string, device: string): string {
  return `${prefix}.${device}`;
}
