"""Which CUDA major version the NVIDIA driver runs, and which cuda-python / TensorRT wheels fit it.

cuda-python 13.x links the CUDA 13 runtime statically and needs a driver for CUDA 13 (R580 or newer); on an
older driver (JetPack 6 ships CUDA 12.6, many desktops run R535-R570) every runtime call returns
``cudaErrorInsufficientDriver``. cuda-python 12.x runs on any driver for CUDA 12 or 13. So the wheels are
chosen by the driver's CUDA major: the ``trt-cu12`` extra (``tensorrt-cu12``, ``cuda-python>=12.3,<13``) or
``trt-cu13`` (``tensorrt-cu13``, ``cuda-python>=13,<14``). Pure functions plus metadata look-ups: nothing here
touches a GPU, so the install hints are the same on every machine and tested on CPU.
"""

from __future__ import annotations

import importlib.metadata
import re

#: cuda-python pins per CUDA major (12.3 is the first 12.x with the ``cuda.bindings`` layout's graph API).
CUDA_PYTHON_PINS = {12: "cuda-python>=12.3,<13", 13: "cuda-python>=13,<14"}
#: The first driver branch whose CUDA is 13 (cuda-python 13.x needs it).
CUDA13_DRIVER = "R580"


def major_of(version: str | None) -> int | None:
    """``'12.6.2'`` -> 12; None or text without a leading number -> None."""
    match = re.match(r"\s*(\d+)", version or "")
    return int(match.group(1)) if match else None


def driver_major(cuda_version: int | None) -> int | None:
    """CUDA's integer version (``cudaDriverGetVersion``: 12060) -> 12; 0 or None (no driver) -> None."""
    return cuda_version // 1000 if cuda_version else None


def extra_for(driver_cuda_major: int | None) -> str:
    """The deblurrt extra that fits a driver: ``trt-cu13`` for CUDA >= 13 drivers, else ``trt-cu12``.

    Unknown drivers get ``trt-cu12``: its cuda-python runs on CUDA 12 and 13 drivers alike.
    """
    return "trt-cu13" if driver_cuda_major is not None and driver_cuda_major >= 13 else "trt-cu12"


def install_hint(driver_cuda_major: int | None = None) -> str:
    """The pip line for TensorRT + cuda-python on this driver (both lines when the driver is unknown)."""
    if driver_cuda_major is not None:
        extra = extra_for(driver_cuda_major)
        pin = CUDA_PYTHON_PINS[13 if extra == "trt-cu13" else 12]
        return (f"pip install 'deblurrt[{extra}]' (this driver runs CUDA {driver_cuda_major}: {pin}); on Jetson "
                f"keep JetPack's TensorRT and pip install '{pin}'")
    return (f"pip install 'deblurrt[trt-cu12]' for drivers older than {CUDA13_DRIVER} and JetPack 6 "
            f"(CUDA 12: '{CUDA_PYTHON_PINS[12]}'), or 'deblurrt[trt-cu13]' for {CUDA13_DRIVER}+ and JetPack 7 "
            "(CUDA 13); 'deblurrt doctor' shows the driver's CUDA version")


def cuda_python_mismatch(cuda_python_major: int | None, driver_cuda_major: int | None) -> str | None:
    """Why this cuda-python cannot run on this driver (None when it can, or when either is unknown).

    A newer CUDA major than the driver's fails on every call; an older one runs (forward compatibility of
    the driver), so only the first case is a mismatch.
    """
    if cuda_python_major is None or driver_cuda_major is None or cuda_python_major <= driver_cuda_major:
        return None
    pin = CUDA_PYTHON_PINS.get(driver_cuda_major, f"cuda-python<{driver_cuda_major + 1}")
    return (f"cuda-python {cuda_python_major}.x needs a driver for CUDA {cuda_python_major} but this driver runs "
            f"CUDA {driver_cuda_major}. Fix: pip install '{pin}' (or the deblurrt[{extra_for(driver_cuda_major)}] "
            f"extra), or update the driver")


def installed_version(*distributions: str) -> str | None:
    """The version of the first installed distribution of ``distributions``, else None."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def tensorrt_cuda_major() -> int | None:
    """The CUDA major of the installed TensorRT wheels (``tensorrt-cu12`` -> 12), None for JetPack's build
    or when no pip TensorRT is installed."""
    for major in (13, 12, 11):
        if installed_version(f"tensorrt-cu{major}", f"tensorrt_cu{major}_libs", f"tensorrt-cu{major}-libs"):
            return major
    return None
