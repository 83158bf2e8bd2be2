"""Bring up the GPU's driver and primary context before torch is imported.

Importing torch takes seconds of Python; creating the CUDA context took seconds more on the
H100 hosts we measured (bench/README.md), and torch only starts it after its import. Through
the driver API (libcuda, with ctypes) the context can start on a thread the moment the
process does, in parallel with the import: torch later finds the device's primary context
already made and attaches to it. Nothing here is needed for correctness: on any failure
(no driver, a bad ordinal) it just reports what happened, and torch's own start-up then
raises the error users should see.
"""
from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import time

log = logging.getLogger(__name__)


def begin(device: str) -> concurrent.futures.Future | None:
    """For ``cuda:N`` (or ``cuda``): a future of ``{"driver_init_s", "primary_context_s"}``
    (``{}`` after a failure, which is logged); ``None`` for other devices."""
    kind, _, index = device.partition(":")
    if kind != "cuda":
        return None
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cuda-start")
    future = pool.submit(_retain_primary_context, int(index or 0))
    pool.shutdown(wait=False)
    return future


def _retain_primary_context(ordinal: int) -> dict:
    started = time.perf_counter()
    try:
        # ctypes releases the GIL during each call, so torch's import goes on meanwhile.
        driver = ctypes.CDLL("libcuda.so.1")
        _check(driver, driver.cuInit(0), "cuInit")
        initialised = time.perf_counter()
        handle, context = ctypes.c_int(), ctypes.c_void_p()
        _check(driver, driver.cuDeviceGet(ctypes.byref(handle), ordinal), "cuDeviceGet")
        # Retained for the life of the process (never released): it is the context torch uses.
        _check(driver, driver.cuDevicePrimaryCtxRetain(ctypes.byref(context), handle), "cuDevicePrimaryCtxRetain")
    except (OSError, RuntimeError) as exc:
        log.warning("could not start the CUDA context early (torch will try on its own): %s", exc)
        return {}
    return {"driver_init_s": initialised - started, "primary_context_s": time.perf_counter() - initialised}


def _check(driver, status: int, call: str) -> None:
    if status != 0:
        name = ctypes.c_char_p()
        driver.cuGetErrorName(status, ctypes.byref(name))
        raise RuntimeError(f"{call}: {(name.value or b'CUDA error').decode()} ({status})")
