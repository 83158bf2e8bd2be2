// The scheduler's view of the devices, as the progress report shows it (workflow code: pure).
import type { ProgressTracker } from './progress';
import type { Scheduler } from './scheduler';

/** How many notices the progress report keeps. */
const NOTICES_KEPT = 50;

export function reportDevices(scheduler: Scheduler, progress: ProgressTracker): void {
  for (const device of scheduler.devices.values()) {
    const report = progress.device(device.id);
    report.state = device.state;
    report.inFlight = device.inFlight.length;
    report.done = device.done;
    report.restarts = device.restarts;
    report.stalls = device.stalls;
    const speed = scheduler.speed(device);
    report.unitsPerSecond = speed === null ? null : speed * 1000;
  }
  progress.report.notices = scheduler.notices.slice(-NOTICES_KEPT);
}
