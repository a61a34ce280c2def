"""doctor's cuda-python section on machines this one is not: cuda-python 12.x without a driver (raises
instead of returning an error code), a cuda-python newer than the driver's CUDA, and the install hints."""

from __future__ import annotations

import types

import pytest

from deblurrt import cudaenv, doctor


class _Error(int):
    """A cudaError_t stand-in: an int with a name."""

    def __new__(cls, value, name):
        obj = super().__new__(cls, value)
        obj.name = name
        return obj


def fake_cudart(*, raises: str | None = None, driver: int = 12060, runtime: int = 13040, count_error=None):
    module = types.SimpleNamespace()

    def call(value):
        def function(*args):
            if raises:
                raise RuntimeError(raises)
            return value
        return function

    success = _Error(0, "cudaSuccess")
    module.cudaDriverGetVersion = call((success, driver))
    module.cudaRuntimeGetVersion = lambda: (success, runtime)  # the runtime's own version needs no driver
    module.cudaGetDeviceCount = call((count_error, None) if count_error is not None else (success, 1))
    module.cudaGetErrorString = lambda error: (success, b"CUDA driver version is insufficient for CUDA runtime version")
    return module


def test_cuda_python_12_without_a_driver_is_installed_with_the_real_reason(monkeypatch):
    cudart = fake_cudart(raises="Failed to dlopen libcuda.so.1")
    monkeypatch.setattr(doctor, "_import_cudart", lambda: (cudart, "12.6.2", None))
    section = doctor.probe_cuda_python()
    assert not section["ok"] and section["installed"] is True and section["version"] == "12.6.2"
    assert "Failed to dlopen libcuda.so.1" in section["reason"]
    assert "install the NVIDIA driver" in section["hint"]
    verdict = doctor.summarize({"cuda_python": section, "tensorrt": {"ok": True}})
    reason = verdict["backends"]["tensorrt"]["reason"]
    assert "not installed" not in reason and "no libcuda" in reason
    assert "(installed)" in doctor._failure("cuda_python", section)


def test_cuda_python_that_raises_at_import_is_installed_not_missing(monkeypatch):
    def failing_import(name):
        if name.startswith("cuda"):
            return None, "import failed: RuntimeError: Failed to dlopen libcuda.so.1"
        return None, "not installed"

    monkeypatch.setattr(doctor, "_try_import", failing_import)
    monkeypatch.setattr(cudaenv, "installed_version", lambda *names: "12.6.2")
    section = doctor.probe_cuda_python()
    assert section["installed"] is True and not section["ok"]
    assert "installed but unusable" in section["reason"] and "libcuda.so.1" in section["reason"]
    assert "install the NVIDIA driver" in section["hint"]


def test_cuda_python_newer_than_the_driver_names_the_pin(monkeypatch):
    insufficient = _Error(35, "cudaErrorInsufficientDriver")
    cudart = fake_cudart(driver=12060, runtime=13040, count_error=insufficient)
    monkeypatch.setattr(doctor, "_import_cudart", lambda: (cudart, "13.4.4", None))
    section = doctor.probe_cuda_python()
    assert not section["ok"] and section["error"] == "cudaErrorInsufficientDriver"
    assert section["cuda_major"] == 13 and section["driver_cuda_major"] == 12
    assert "cuda-python>=12.3,<13" in section["mismatch"] and section["hint"] == section["mismatch"]
    assert "trt-cu12" in section["hint"]


def test_matching_cuda_python_has_no_mismatch(monkeypatch):
    props = types.SimpleNamespace(name=b"NVIDIA H200\x00", major=9, minor=0, totalGlobalMem=140 << 30)
    cudart = fake_cudart(driver=13000, runtime=12060)
    cudart.cudaGetDeviceProperties = lambda index: (_Error(0, "cudaSuccess"), props)
    monkeypatch.setattr(doctor, "_import_cudart", lambda: (cudart, "12.6.2", None))
    section = doctor.probe_cuda_python()
    assert section["ok"] and "mismatch" not in section  # an older CUDA major runs on a newer driver
    assert section["devices"][0]["name"] == "NVIDIA H200"


@pytest.mark.parametrize("driver, extra, pin", [(12, "trt-cu12", "cuda-python>=12.3,<13"),
                                                (13, "trt-cu13", "cuda-python>=13,<14"),
                                                (None, "trt-cu12", "cuda-python>=12.3,<13")])
def test_install_hint_follows_the_driver(driver, extra, pin):
    hint = cudaenv.install_hint(driver)
    assert f"deblurrt[{extra}]" in hint and pin in hint
    assert cudaenv.extra_for(driver) == extra
    assert cudaenv.cuda_python_mismatch(13, 12) and cudaenv.cuda_python_mismatch(12, 13) is None
    assert cudaenv.major_of("12.6.2") == 12 and cudaenv.driver_major(12060) == 12 and cudaenv.driver_major(0) is None


def test_trt_extras_pin_cuda_python_to_one_cuda_major():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    assert "cuda-python>=12.3,<13" in extras["trt-cu12"] and any(r.startswith("tensorrt-cu12") for r in extras["trt-cu12"])
    assert "cuda-python>=13,<14" in extras["trt-cu13"] and any(r.startswith("tensorrt-cu13") for r in extras["trt-cu13"])
    assert extras["trt"] == ["deblurrt[trt-cu12]"]
    for requirements in (extras["trt-cu12"], extras["trt-cu13"]):
        assert cudaenv.CUDA_PYTHON_PINS[12] in requirements or cudaenv.CUDA_PYTHON_PINS[13] in requirements
