"""cuda_start: the driver-API context start that runs while torch imports. No GPU here, so
libcuda is replaced by a stand-in that records the calls and answers like the driver."""
from __future__ import annotations

import ctypes

from virnucpro_runtime import cuda_start


class FakeDriver:
    def __init__(self, fail_on: str | None = None):
        self.calls: list[tuple] = []
        self.fail_on = fail_on

    def _call(self, name, *args):
        self.calls.append((name, *args))
        return 100 if name == self.fail_on else 0  # 100: CUDA_ERROR_NO_DEVICE

    def cuInit(self, flags):
        return self._call("cuInit", flags)

    def cuDeviceGet(self, handle, ordinal):
        return self._call("cuDeviceGet", ordinal)

    def cuDevicePrimaryCtxRetain(self, context, handle):
        return self._call("cuDevicePrimaryCtxRetain")

    def cuGetErrorName(self, status, name):
        ctypes.cast(name, ctypes.POINTER(ctypes.c_char_p))[0] = b"CUDA_ERROR_NO_DEVICE"
        return 0


def test_other_devices_start_nothing():
    assert cuda_start.begin("cpu") is None


def test_retains_the_primary_context_of_the_ordinal_asked_for(monkeypatch):
    driver = FakeDriver()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: driver)
    phases = cuda_start.begin("cuda:3").result()
    assert set(phases) == {"driver_init_s", "primary_context_s"}
    assert [c[0] for c in driver.calls] == ["cuInit", "cuDeviceGet", "cuDevicePrimaryCtxRetain"]
    assert driver.calls[1] == ("cuDeviceGet", 3)


def test_a_failure_is_logged_and_left_to_torch(monkeypatch, caplog):
    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeDriver(fail_on="cuDeviceGet"))
    assert cuda_start.begin("cuda:1").result() == {}
    assert "cuDeviceGet: CUDA_ERROR_NO_DEVICE (100)" in caplog.text

    def no_driver(name):
        raise OSError("libcuda.so.1: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_driver)
    assert cuda_start.begin("cuda").result() == {}
    assert "libcuda.so.1" in caplog.text
