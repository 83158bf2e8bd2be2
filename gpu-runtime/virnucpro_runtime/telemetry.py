"""Device telemetry for progress events and the benchmark: NVML utilisation and memory
(nvidia-ml-py's ``pynvml``) on CUDA, nothing on CPU. NVML failures never stop a run: the
fields then read ``None``.
"""
from __future__ import annotations

import logging
import threading
import time

import torch

log = logging.getLogger(__name__)


class DeviceMonitor:
    def __init__(self, device: torch.device):
        self.device = device
        self._handle = None
        if device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByPciBusId(_pci_bus_id(device))
        except Exception as exc:  # NVML missing or refused: telemetry degrades, the run does not
            log.warning("NVML unavailable (%s); GPU utilisation will not be reported", exc)
            self._handle = None

    def utilization(self) -> float | None:
        """Fraction of the last sample period (~1/6 s to 1 s) in which a kernel ran."""
        if self._handle is None:
            return None
        try:
            return self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu / 100.0
        except Exception:
            return None

    def memory_used_bytes(self) -> int | None:
        """Memory this process holds through PyTorch's allocator (reserved, not just in use)."""
        if self.device.type != "cuda":
            return None
        return int(torch.cuda.memory_reserved(self.device))

    def free_memory_bytes(self) -> int | None:
        if self.device.type != "cuda":
            return None
        free, _total = torch.cuda.mem_get_info(self.device)
        return int(free)


def _pci_bus_id(device: torch.device) -> str:
    props = torch.cuda.get_device_properties(device)
    return f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"


class UtilizationSampler:
    """GPU busy fraction over a region: NVML's own utilisation samples (one per ~1/6 s,
    each the share of its period in which a kernel ran) with timestamps inside the region,
    fetched every ``period_s`` so NVML's bounded sample buffer never overflows. Falls back
    to polling the averaged utilisation where the driver keeps no samples."""

    def __init__(self, monitor: DeviceMonitor, period_s: float = 0.5):
        self.monitor = monitor
        self.period_s = period_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
        self._last_us = 0

    def __enter__(self) -> "UtilizationSampler":
        self._last_us = int(time.time() * 1e6)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._collect()

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._collect()

    def _collect(self) -> None:
        handle = self.monitor._handle
        if handle is None:
            return
        nvml = self.monitor._nvml
        try:
            _kind, samples = nvml.nvmlDeviceGetSamples(handle, nvml.NVML_GPU_UTILIZATION_SAMPLES, self._last_us)
        except Exception:
            value = self.monitor.utilization()
            if value is not None:
                self.samples.append(value)
            return
        for sample in samples:
            if sample.timeStamp > self._last_us:
                self.samples.append(sample.sampleValue.uiVal / 100.0)
                self._last_us = sample.timeStamp

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None
