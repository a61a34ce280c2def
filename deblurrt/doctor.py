"""Show what this machine can run, and why not.

Each library and device that deblurrt can use is probed separately. The report has one line per
item: its version and details when it works, otherwise the reason and how to fix it. A missing GPU
or library is a finding, not an error: the exit code is 0 whatever is found.

What it checks:
  Python, Platform    interpreter and executable, OS, CPU model, cores (and those this process may use)
  deblurrt, numpy     versions (and where deblurrt is imported from)
  torch               version, its CUDA build, torch.cuda.is_available() and the device name
  ONNX, ONNX Runtime  versions and onnxruntime's execution providers: CUDAExecutionProvider or
                      TensorrtExecutionProvider in the list means onnxruntime can use the GPU
  TensorRT            the tensorrt Python module; on Jetson it comes with JetPack, on a desktop
                      with pip install 'deblurrt[trt-cu12]' or '[trt-cu13]'
  cuda-python         the CUDA runtime binding: device count, name, compute capability, driver and
                      runtime versions. When no device is usable it shows the CUDA error, e.g.
                      cudaErrorInsufficientDriver (35) = no or too old NVIDIA driver,
                      cudaErrorNoDevice (100) = driver present but no GPU visible; and when its CUDA
                      major is newer than the driver's (cuda-python 13.x on JetPack 6 or a pre-R580
                      driver), the pin that fits: the trt-cu12 / trt-cu13 extras. cuda-python 12.x
                      without a driver raises "Failed to dlopen libcuda.so.1": reported as installed,
                      with that reason
  pycuda              optional; deblurrt itself uses cuda-python
  GPU                 nvidia-smi: name, driver version, memory
  Jetson              board model, L4T release, nvpmodel power mode
  OpenCV              video I/O compiled into cv2: FFmpeg (files, RTSP), GStreamer (csi:// cameras),
                      V4L2 (USB cameras), and the GUI backend (NONE in the headless wheel)

How to read it:
  The "Backends" and "Stream sources" blocks at the end are the verdict. Backends, fastest first:
  tensorrt, onnxruntime-cuda, torch-cuda, onnxruntime-cpu, torch-cpu; stream sources: csi:// (Jetson
  CSI camera via GStreamer), USB camera, files / RTSP. Each says "yes" (and through what) or "no"
  followed by everything that is missing for it.

  --json prints the same findings as one JSON object, a key per section, each with "ok" and, when
  not ok, "reason" and usually "hint" -- for scripts and bug reports.

examples:
  deblurrt doctor                  the report
  deblurrt doctor --json > env.json    attach to a bug report
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from deblurrt import cudaenv

# The errors a probe of a third-party library can reasonably raise: a missing or broken install
# (ImportError, OSError from a shared library that will not load), a library refusing to initialise
# (RuntimeError), or an older/newer API than expected (AttributeError, TypeError, ValueError, LookupError).
# A probe that hits one becomes a "not ok" finding instead of taking the whole report down.
PROBE_ERRORS: tuple[type[Exception], ...] = (
    ImportError,
    OSError,
    RuntimeError,
    AttributeError,
    TypeError,
    ValueError,
    LookupError,
)

# External tools (nvidia-smi, nvpmodel) can hang on a wedged driver; never wait longer than this.
TOOL_TIMEOUT_S = 5.0

HINT_TORCH = "pip install 'deblurrt[train]'"
HINT_ONNX = "pip install 'deblurrt[export]'"
HINT_ORT = "pip install 'deblurrt[ort]' (CPU); for NVIDIA GPUs install onnxruntime-gpu instead"
HINT_CUDA_PYTHON = cudaenv.install_hint() + " (installs cuda-python)"
HINT_TRT_JETSON = "on Jetson it comes with JetPack (system Python: sudo apt install python3-libnvinfer)"
# JetPack installs tensorrt into the system site-packages, which a plain venv does not see.
HINT_TRT_JETSON_VENV = "a venv must be created with --system-site-packages to see it"
HINT_TRT_DESKTOP = "on a desktop GPU: " + cudaenv.install_hint() + " (pulls NVIDIA's TensorRT wheels)"

# Report labels, in report order; the keys are the sections of collect().
LABELS: dict[str, str] = {
    "python": "Python",
    "platform": "Platform",
    "deblurrt": "deblurrt",
    "numpy": "numpy",
    "torch": "torch",
    "onnx": "ONNX",
    "onnxruntime": "ONNX Runtime",
    "tensorrt": "TensorRT",
    "cuda_python": "cuda-python",
    "pycuda": "pycuda",
    "gpu": "GPU",
    "jetson": "Jetson",
    "opencv": "OpenCV",
}


# --------------------------------------------------------------------------------------------- helpers


def _fail(reason: str, hint: str | None = None, **details: Any) -> dict[str, Any]:
    """A "not ok" section: the reason it failed, the fix when there is one, and whatever was learnt."""
    section: dict[str, Any] = {"ok": False, **details, "reason": reason}
    if hint:
        section["hint"] = hint
    return section


def _try_import(name: str) -> tuple[ModuleType | None, str | None]:
    """Import ``name``; return ``(module, None)`` or ``(None, reason)`` without raising."""
    try:
        return importlib.import_module(name), None
    except ImportError as error:
        missing = getattr(error, "name", None) or ""
        # "not installed" only when the package itself is absent; a missing dependency *inside* the
        # package (or a blocked import) is a broken install and its message is the useful part.
        if isinstance(error, ModuleNotFoundError) and missing.split(".")[0] == name.split(".")[0]:
            return None, "not installed"
        return None, f"import failed: {error}"
    except (OSError, RuntimeError) as error:
        # A wheel whose shared libraries do not load (libcudart.so.12 missing, ABI mismatch) raises these.
        return None, f"import failed: {type(error).__name__}: {error}"


def _module_version(module: ModuleType, *distributions: str) -> str | None:
    """``module.__version__`` as a plain string, falling back to the distribution metadata."""
    version = getattr(module, "__version__", None)
    if version is not None:
        return str(version)  # torch's TorchVersion is a str subclass; keep the JSON plain
    return cudaenv.installed_version(*distributions)


def _run_tool(argv: list[str]) -> tuple[str | None, str | None]:
    """Run an external tool with a timeout; return ``(stdout, None)`` or ``(None, reason)``."""
    name = os.path.basename(argv[0])
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return None, f"{name} timed out after {TOOL_TIMEOUT_S:g} s"
    except OSError as error:
        return None, f"{name} could not run: {error}"
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        return None, f"{name} exited with status {done.returncode}" + (f": {message[0]}" if message else "")
    return done.stdout, None


def _read_text(path: str) -> str | None:
    """The text of a small system file, with device-tree NUL terminators removed; None if unreadable."""
    try:
        return Path(path).read_bytes().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except OSError:
        return None


# --------------------------------------------------------------------------------------------- parsers

# (key, value, [(child key, child value), ...]) of one line of the build information.
_Entry = tuple[str, str, list[tuple[str, str]]]
_GUI_TOOLKIT = re.compile(r"qt|gtk|win32|cocoa|wayland|framebuffer", re.IGNORECASE)
_ENTRY = re.compile(r"^(?P<indent>\s*)(?P<key>[^:]+?)\s*:\s*(?P<value>.*?)\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _yes_no(value: str) -> bool | None:
    """True/False for an OpenCV "YES ..."/"NO" value, None when it is neither."""
    word = value.strip().split(" ", 1)[0].upper()
    if word.startswith("YES"):
        return True
    if word.startswith("NO") and not word.startswith("NONE"):
        return False
    return None


def _section(lines: list[str], header: str) -> tuple[str | None, list[_Entry]]:
    """Find ``header:`` in OpenCV build information and return its value and its nested entries.

    Entries are ``(key, value, children)``: the lines indented one level below the header, each with
    the deeper-indented lines after it (e.g. FFMPEG's avcodec/avformat). The section ends at the first
    non-blank line indented no deeper than the header, so it does not depend on exact column widths.
    """
    wanted = header.casefold()
    for start, line in enumerate(lines):
        match = _ENTRY.match(line)
        if not match or match["key"].strip().casefold() != wanted:
            continue
        header_indent = _indent(line)
        entries: list[_Entry] = []
        entry_indent: int | None = None
        for inner in lines[start + 1 :]:
            if not inner.strip():
                continue
            if _indent(inner) <= header_indent:
                break
            item = _ENTRY.match(inner)
            if not item:
                continue
            if entry_indent is None or _indent(inner) <= entry_indent:
                entry_indent = _indent(inner)
                entries.append((item["key"].strip(), item["value"], []))
            elif entries:
                entries[-1][2].append((item["key"].strip(), item["value"]))
        return match["value"], entries
    return None, []


def _entry_flag(key: str, value: str, children: list[tuple[str, str]]) -> bool | None:
    """YES/NO of one entry; an empty value (OpenCV 3 "GStreamer:" with "base: YES") is YES if a child is."""
    flag = _yes_no(value)
    if flag is None and not value.strip() and children:
        flags = [_yes_no(child_value) for _, child_value in children]
        if any(flags):
            return True
        if flags and all(f is False for f in flags):
            return False
    return flag


def parse_opencv_build_info(text: str) -> dict[str, Any]:
    """Parse the "Video I/O" and "GUI" parts of ``cv2.getBuildInformation()``.

    Returns ``{"ffmpeg", "gstreamer", "v4l2": bool | None, "gui": str | None, "video_io": {name: value}}``
    where None means the build information does not mention it. Handles the OpenCV 3, 4 and 5 layouts:
    ``v4l/v4l2: YES (linux/videodev2.h)``, OpenCV 3's ``V4L/V4L2: NO/YES``, a ``GStreamer:`` line whose
    YES is on a nested ``base:`` line, and a ``GUI:`` line with or without a value of its own
    (``GUI: NONE`` in the headless wheel, ``GUI: GTK3``, or ``GUI:`` followed by ``QT: YES ...``).
    """
    lines = text.splitlines()
    _, video_entries = _section(lines, "Video I/O")
    video_io: dict[str, str] = {}
    flags: dict[str, bool | None] = {}
    for key, value, children in video_entries:
        video_io[key] = value
        flags[key.casefold()] = _entry_flag(key, value, children)
        # OpenCV 3 wrote "V4L/V4L2: NO/YES": one answer per name, split on the slash.
        pair = re.match(r"^\s*(YES|NO)\s*/\s*(YES|NO)\b", value, re.IGNORECASE)
        names = key.split("/")
        if pair and len(names) == 2:
            for name, answer in zip(names, pair.groups(), strict=True):
                flags[name.strip().casefold()] = answer.upper() == "YES"

    def flag(*names: str) -> bool | None:
        found = [flags[key] for key in flags if any(key == n or key.startswith(n) for n in names)]
        if any(found):
            return True
        return False if any(f is False for f in found) else None

    gui_value, gui_entries = _section(lines, "GUI")
    gui: str | None = gui_value.strip() if gui_value else None
    if not gui and gui_value is not None:
        # Older layout: the backend is whichever nested line says YES (e.g. "QT: YES (ver 5.15)").
        # Only toolkit lines count: siblings such as "VTK support" or "Built-in Unicode font" are not GUIs.
        enabled = [
            key
            for key, value, children in gui_entries
            if _GUI_TOOLKIT.search(key) and _entry_flag(key, value, children)
        ]
        gui = ", ".join(enabled) if enabled else "NONE"
    v4l2 = flags.get("v4l2")
    if v4l2 is None:
        v4l2 = flag("v4l")
    return {
        "ffmpeg": flag("ffmpeg"),
        "gstreamer": flag("gstreamer"),
        "v4l2": v4l2,
        "gui": gui,
        "video_io": video_io,
    }


def parse_l4t_release(text: str) -> str | None:
    """The L4T version in ``/etc/nv_tegra_release`` ("# R35 (release), REVISION: 4.1, ...") as "35.4.1"."""
    match = re.search(r"R(\d+)\s*\(release\)\s*,\s*REVISION:\s*([\d.]+)", text)
    if not match:
        return None
    return f"{match[1]}.{match[2].rstrip('.')}"


def _cuda_version(value: int | None) -> str | None:
    """CUDA's integer versions (12040) as "12.4"; 0 (no driver) as None."""
    if not value:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


# --------------------------------------------------------------------------------------------- probes


def probe_python() -> dict[str, Any]:
    """Interpreter version, implementation and executable, and whether it runs in a virtual env."""
    in_venv = sys.prefix != sys.base_prefix
    system_site = None
    if in_venv:
        # Matters on Jetson: JetPack's tensorrt lives in the system site-packages.
        config = _read_text(os.path.join(sys.prefix, "pyvenv.cfg")) or ""
        match = re.search(r"include-system-site-packages\s*=\s*(\w+)", config)
        system_site = match[1].lower() == "true" if match else None
    section: dict[str, Any] = {
        "ok": sys.version_info >= (3, 10),
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "venv": in_venv,
        "venv_system_site_packages": system_site,
    }
    if not section["ok"]:
        section["reason"] = f"Python {section['version']} is too old"
        section["hint"] = "deblurrt needs Python 3.10 or newer"
    return section


def _cpu_model() -> str | None:
    """The CPU's marketing name: /proc/cpuinfo on Linux, else what platform knows."""
    cpuinfo = _read_text("/proc/cpuinfo") or ""
    # x86 has "model name"; many ARM kernels (Jetson) only have "Hardware" or nothing useful.
    for field in ("model name", "Hardware", "Processor"):
        match = re.search(rf"^{field}\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        if match and match[1].strip():
            return match[1].strip()
    return platform.processor() or platform.machine() or None


def probe_platform() -> dict[str, Any]:
    """OS, architecture, CPU model and core counts (all cores, and those this process may use)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "ok": True,
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
    }


def probe_deblurrt() -> dict[str, Any]:
    """deblurrt's version and the folder it is imported from (a stale install shows up here)."""
    module, reason = _try_import("deblurrt")
    if module is None:
        return _fail(reason or "not importable")
    return {
        "ok": True,
        "version": _module_version(module, "deblurrt"),
        "path": os.path.dirname(os.path.abspath(module.__file__ or "")),
        "installed_version": cudaenv.installed_version("deblurrt"),
    }


def probe_numpy() -> dict[str, Any]:
    """numpy's version."""
    numpy, reason = _try_import("numpy")
    if numpy is None:
        return _fail(reason or "not importable", "pip install numpy (a core dependency of deblurrt)")
    return {"ok": True, "version": _module_version(numpy, "numpy")}


def probe_torch() -> dict[str, Any]:
    """torch's version, the CUDA version it was built for, and whether it sees a CUDA device."""
    torch, reason = _try_import("torch")
    if torch is None:
        return _fail(reason or "not importable", HINT_TORCH)
    cuda_build = getattr(torch.version, "cuda", None)
    section: dict[str, Any] = {
        "ok": True,
        "version": _module_version(torch, "torch"),
        "cuda_build": str(cuda_build) if cuda_build else None,
        "cuda_available": False,
        "device": None,
        "capability": None,
    }
    # is_available() reports driver trouble as a UserWarning rather than an exception: keep its text.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = bool(torch.cuda.is_available())
    section["cuda_available"] = available
    if available:
        section["device"] = str(torch.cuda.get_device_name(0))
        major, minor = torch.cuda.get_device_capability(0)
        section["capability"] = f"{major}.{minor}"
    elif not cuda_build:
        section["cuda_reason"] = "CPU-only build of torch"
    elif caught:
        section["cuda_reason"] = str(caught[0].message).strip().splitlines()[0]
    else:
        section["cuda_reason"] = "no CUDA device visible to torch"
    return section


def probe_onnx() -> dict[str, Any]:
    """onnx's version (needed to export models)."""
    onnx, reason = _try_import("onnx")
    if onnx is None:
        return _fail(reason or "not importable", HINT_ONNX)
    return {"ok": True, "version": _module_version(onnx, "onnx")}


def probe_onnxruntime() -> dict[str, Any]:
    """onnxruntime's version and execution providers, noting the CUDA and TensorRT ones."""
    ort, reason = _try_import("onnxruntime")
    if ort is None:
        return _fail(reason or "not importable", HINT_ORT)
    providers = [str(p) for p in ort.get_available_providers()]
    return {
        "ok": True,
        "version": _module_version(ort, "onnxruntime", "onnxruntime-gpu"),
        "providers": providers,
        "cuda_provider": "CUDAExecutionProvider" in providers,
        "tensorrt_provider": "TensorrtExecutionProvider" in providers,
    }


def probe_tensorrt(on_jetson: bool | None = None) -> dict[str, Any]:
    """The tensorrt module's version, or why it does not import and how to install it."""
    if on_jetson is None:
        on_jetson = probe_jetson()["ok"]
    trt, reason = _try_import("tensorrt")
    if trt is None:
        hint = f"{HINT_TRT_JETSON}; {HINT_TRT_JETSON_VENV if on_jetson else HINT_TRT_DESKTOP}"
        return _fail(reason or "not importable", hint)
    return {"ok": True, "version": _module_version(trt, "tensorrt", "tensorrt-cu12", "tensorrt-cu13")}


def _import_cudart() -> tuple[ModuleType | None, str | None, str | None]:
    """cuda-python's runtime module, its version, and the reason when it cannot be imported.

    The version comes from the distribution when the import fails, so an installed but unusable
    cuda-python (a wheel that raises at import without libcuda) is not mistaken for a missing one.
    """
    cudart, reason = _try_import("cuda.bindings.runtime")
    if cudart is None:
        # cuda-python before 12.6 exposed the runtime as cuda.cudart.
        legacy, legacy_reason = _try_import("cuda.cudart")
        if legacy is None:
            if reason == "not installed" and legacy_reason != "not installed":
                reason = legacy_reason
            return None, cudaenv.installed_version("cuda-python", "cuda-bindings"), reason
        cudart = legacy
    bindings, _ = _try_import("cuda.bindings")
    version = getattr(bindings, "__version__", None) if bindings else None
    return cudart, str(version) if version else cudaenv.installed_version("cuda-python", "cuda-bindings"), None


def _cuda_error_text(cudart: ModuleType, error: Any) -> str:
    """A cudaError_t as "cudaErrorInsufficientDriver (35): CUDA driver version is insufficient ..."."""
    name = getattr(error, "name", str(error))
    message = ""
    described = cudart.cudaGetErrorString(error)
    if isinstance(described, tuple) and len(described) > 1:
        message = described[1].decode() if isinstance(described[1], bytes) else str(described[1])
    return f"{name} ({int(error)})" + (f": {message}" if message else "")


def _cuda_call(cudart: ModuleType, function: Any, *args: Any) -> tuple[Any, str | None]:
    """Call a cuda-python runtime function; return ``(value, None)`` or ``(None, decoded error)``.

    cuda-python returns ``(cudaError_t, value...)`` tuples instead of raising, so a machine without a
    driver gives a named error here rather than an exception -- except cuda-python 12.x, which raises
    ``RuntimeError: Failed to dlopen libcuda.so.1``: that is returned as the error text too.
    """
    try:
        result = function(*args)
    except (RuntimeError, OSError) as error:
        return None, f"{type(error).__name__}: {error}"
    error, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
    if int(error) != 0:
        return None, _cuda_error_text(cudart, error)
    return (values[0] if len(values) == 1 else values or None), None


def _no_driver_library(error: str) -> bool:
    """True for cuda-python 12.x's "Failed to dlopen libcuda.so.1" (the driver library is not installed)."""
    return "libcuda" in error or "dlopen" in error


def probe_cuda_python() -> dict[str, Any]:
    """cuda-python: device count and, per device, name and compute capability; driver/runtime versions;
    whether its CUDA major fits the driver (and the pin that does)."""
    cudart, version, reason = _import_cudart()
    cuda_major = cudaenv.major_of(version)
    hint_no_driver = "no NVIDIA driver is loaded: install the NVIDIA driver (on Jetson, flash JetPack)"
    if cudart is None:
        if version is None:
            return _fail(reason or "not importable", HINT_CUDA_PYTHON, installed=False)
        # installed, but it does not import: cuda-python 12.x without libcuda, or a broken wheel
        hint = hint_no_driver if _no_driver_library(reason or "") else HINT_CUDA_PYTHON
        return _fail(f"installed but unusable ({reason})", hint, installed=True, version=version,
                     cuda_major=cuda_major)
    driver, driver_error = _cuda_call(cudart, cudart.cudaDriverGetVersion)
    runtime, _ = _cuda_call(cudart, cudart.cudaRuntimeGetVersion)
    driver_major = cudaenv.driver_major(driver)
    details: dict[str, Any] = {
        "installed": True,
        "version": version,
        "cuda_major": cuda_major,
        "driver_version": _cuda_version(driver),
        "driver_cuda_major": driver_major,
        "runtime_version": _cuda_version(runtime),
        "device_count": 0,
        "devices": [],
    }
    mismatch = cudaenv.cuda_python_mismatch(cuda_major, driver_major)
    if mismatch:
        details["mismatch"] = mismatch
    trt_major = cudaenv.tensorrt_cuda_major()
    if trt_major is not None:
        details["tensorrt_cuda_major"] = trt_major
        if driver_major is not None and trt_major > driver_major:
            details["tensorrt_mismatch"] = (f"tensorrt-cu{trt_major} needs a driver for CUDA {trt_major}; this one "
                                            f"runs CUDA {driver_major}. Fix: {cudaenv.install_hint(driver_major)}")
    if driver_error and _no_driver_library(driver_error):
        details["error"] = "no libcuda"
        return _fail(f"installed, but the NVIDIA driver library is missing ({driver_error})", hint_no_driver,
                     **details)
    count, error = _cuda_call(cudart, cudart.cudaGetDeviceCount)
    if error:
        code = error.split(" ", 1)[0]
        details["error"] = code  # the bare name, for scripts and the short "can run" reasons
        if _no_driver_library(error) or (code == "cudaErrorInsufficientDriver" and not driver):
            hint = hint_no_driver
        elif mismatch:
            hint = mismatch
        elif code == "cudaErrorInsufficientDriver":
            hint = (
                f"the driver supports CUDA {details['driver_version']} but cuda-python's runtime is "
                f"{details['runtime_version']}: update the driver or {cudaenv.install_hint(driver_major)}"
            )
        elif code == "cudaErrorNoDevice":
            hint = "no GPU visible: in a container run with --gpus all (NVIDIA Container Toolkit)"
        else:
            hint = "check the NVIDIA driver with nvidia-smi"
        return _fail(error, hint, **details)
    count = int(count or 0)
    details["device_count"] = count
    for index in range(count):
        props, error = _cuda_call(cudart, cudart.cudaGetDeviceProperties, index)
        if error:
            details["devices"].append({"index": index, "error": error})
            continue
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        details["devices"].append(
            {
                "index": index,
                "name": name.replace("\x00", "").strip(),
                "capability": f"{props.major}.{props.minor}",
                "memory_mib": int(props.totalGlobalMem) // (1 << 20),
                "integrated": bool(getattr(props, "integrated", False)),
            }
        )
    if count == 0:
        return _fail("no CUDA device", "check the NVIDIA driver with nvidia-smi", **details)
    return {"ok": True, **details}


def probe_pycuda() -> dict[str, Any]:
    """pycuda's version and device count when it is importable (optional; deblurrt uses cuda-python)."""
    driver, reason = _try_import("pycuda.driver")
    if driver is None:
        return _fail(reason or "not importable", "optional: deblurrt uses cuda-python")
    package, _ = _try_import("pycuda")
    version = getattr(package, "VERSION_TEXT", None) or cudaenv.installed_version("pycuda")
    # pycuda raises its own pycuda.driver.Error (e.g. cuInit failed: no CUDA-capable device).
    driver_error = getattr(driver, "Error", RuntimeError)
    try:
        driver.init()
        count = int(driver.Device.count())
    except driver_error as error:
        return _fail(f"cuInit failed: {error}", "check the NVIDIA driver with nvidia-smi", version=version)
    if count == 0:
        return _fail("no CUDA device", version=version, device_count=0)
    return {"ok": True, "version": version, "device_count": count}


def probe_gpu(on_jetson: bool | None = None) -> dict[str, Any]:
    """GPUs listed by nvidia-smi: name, driver version, memory."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        if on_jetson:
            return _fail("no nvidia-smi", "normal on older JetPack: the GPU is integrated (see tegrastats)")
        return _fail("no nvidia-smi", "no NVIDIA driver installed (or not on PATH)")
    output, reason = _run_tool([exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    if output is None:
        return _fail(reason or "nvidia-smi failed", "the NVIDIA driver is installed but not working")
    gpus = []
    for line in output.strip().splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) >= 3:
            gpus.append({"name": fields[0], "driver": fields[1], "memory": fields[2]})
    if not gpus:
        return _fail("nvidia-smi lists no GPU", output=output.strip())
    return {"ok": True, "gpus": gpus}


def probe_jetson() -> dict[str, Any]:
    """Jetson board model, L4T release and nvpmodel power mode; not ok on anything but a Jetson."""
    model = _read_text("/proc/device-tree/model")
    compatible = _read_text("/proc/device-tree/compatible") or ""
    release_text = _read_text("/etc/nv_tegra_release")
    is_jetson = release_text is not None or "nvidia,tegra" in compatible or "jetson" in (model or "").lower()
    if not is_jetson:
        return _fail("not a Jetson (no /etc/nv_tegra_release)", model=model)
    section: dict[str, Any] = {
        "ok": True,
        "model": model,
        "l4t": parse_l4t_release(release_text) if release_text else None,
        "power_mode": None,
    }
    exe = shutil.which("nvpmodel")
    if exe:
        output, reason = _run_tool([exe, "-q"])
        if output is not None:
            match = re.search(r"Power Mode:\s*(.+)", output)
            section["power_mode"] = match[1].strip() if match else output.strip().splitlines()[0]
        else:
            section["power_mode_reason"] = reason
    return section


def probe_opencv() -> dict[str, Any]:
    """OpenCV's version and the video I/O backends and GUI backend it was built with."""
    cv2, reason = _try_import("cv2")
    if cv2 is None:
        return _fail(reason or "not importable", "pip install opencv-python-headless (a core dependency)")
    return {"ok": True, "version": str(cv2.__version__), **parse_opencv_build_info(cv2.getBuildInformation())}


# --------------------------------------------------------------------------------------------- verdict


def _verdict(problems: list[str], via: str | None = None) -> dict[str, Any]:
    if problems:
        return {"ok": False, "reason": "; ".join(problems)}
    return {"ok": True, **({"via": via} if via else {})}


def summarize(info: dict[str, Any]) -> dict[str, Any]:
    """The "can run" verdict from collected sections: inference backends and stream sources usable here."""

    def section(name: str) -> dict[str, Any]:
        return info.get(name) or {}

    torch, ort, trt, cudapy = (
        section("torch"),
        section("onnxruntime"),
        section("tensorrt"),
        section("cuda_python"),
    )
    cv, jetson, gpu = section("opencv"), section("jetson"), section("gpu")
    cuda_device = bool(cudapy.get("ok") or torch.get("cuda_available") or gpu.get("ok") or jetson.get("ok"))
    # Name the most specific cause: cuda-python's decoded CUDA error, else what nvidia-smi said.
    if cudapy.get("installed"):
        no_device = f"no CUDA device ({cudapy.get('error') or cudapy.get('reason')})"
    else:
        no_device = f"no CUDA device found ({gpu.get('reason', 'no GPU probe')})"

    trt_problems = []
    if not trt.get("ok"):
        trt_problems.append(f"TensorRT {trt.get('reason', 'not probed')}")
    if not cudapy.get("installed"):
        trt_problems.append("cuda-python not installed")
    elif not cudapy.get("ok"):
        trt_problems.append(no_device)

    ort_cuda = []
    if not ort.get("ok"):
        ort_cuda.append(f"onnxruntime {ort.get('reason', 'not probed')}")
    else:
        if not ort.get("cuda_provider"):
            ort_cuda.append("no CUDAExecutionProvider (CPU-only onnxruntime; install onnxruntime-gpu)")
        if not cuda_device:
            ort_cuda.append(no_device)
    ort_cpu = []
    if not ort.get("ok"):
        ort_cpu.append(f"onnxruntime {ort.get('reason', 'not probed')}")
    elif "CPUExecutionProvider" not in ort.get("providers", []):
        ort_cpu.append("no CPUExecutionProvider")

    torch_problems = [] if torch.get("ok") else [f"torch {torch.get('reason', 'not probed')}"]
    torch_cuda = list(torch_problems)
    if torch.get("ok") and not torch.get("cuda_available"):
        torch_cuda.append(torch.get("cuda_reason", "CUDA not available"))

    backends = {
        "tensorrt": _verdict(trt_problems),
        "onnxruntime-cuda": _verdict(ort_cuda),
        "torch-cuda": _verdict(torch_cuda),
        "onnxruntime-cpu": _verdict(ort_cpu),
        "torch-cpu": _verdict(torch_problems),
    }

    opencv_missing = [] if cv.get("ok") else [f"OpenCV {cv.get('reason', 'not probed')}"]
    csi = list(opencv_missing)
    if cv.get("ok") and not cv.get("gstreamer"):
        csi.append("OpenCV built without GStreamer")
    if not jetson.get("ok"):
        csi.append("not a Jetson (csi:// reads CSI cameras through nvarguscamerasrc)")

    usb, usb_via = list(opencv_missing), None
    if cv.get("ok"):
        video_io = {key.casefold(): value for key, value in (cv.get("video_io") or {}).items()}
        # V4L2 on Linux; Windows and macOS builds read webcams through their own APIs.
        native = [
            name
            for name in ("DirectShow", "Media Foundation", "MSMF", "AVFoundation")
            if _yes_no(video_io.get(name.casefold(), "")) is True
        ]
        if cv.get("v4l2"):
            usb_via = "V4L2"
        elif native:
            usb_via = native[0]
        else:
            usb.append("OpenCV built without V4L2")

    files, files_via = list(opencv_missing), None
    if cv.get("ok"):
        if cv.get("ffmpeg"):
            files_via = "FFmpeg"
        elif cv.get("gstreamer"):
            files_via = "GStreamer"
        else:
            files.append("OpenCV built without FFmpeg or GStreamer")

    sources = {
        "csi://": _verdict(csi, "GStreamer"),
        "USB camera": _verdict(usb, usb_via),
        "files / RTSP": _verdict(files, files_via),
    }
    return {
        "ok": any(v["ok"] for v in backends.values()),
        "backends": backends,
        "sources": sources,
    }


def _guarded(probe: Any, *args: Any) -> dict[str, Any]:
    """Run one probe; an unexpected library error becomes a "not ok" finding for that section only."""
    try:
        return probe(*args)
    except PROBE_ERRORS as error:
        return _fail(f"probe failed: {type(error).__name__}: {error}")


def collect() -> dict[str, Any]:
    """Probe everything; return plain JSON-able data, one key per section plus ``can_run``.

    Each section has ``ok`` and its details; when ``ok`` is false, ``reason`` (and usually ``hint``).
    Never raises for a missing or broken library, driver or device.
    """
    jetson = _guarded(probe_jetson)  # first: the TensorRT and GPU hints differ on a Jetson
    on_jetson = bool(jetson.get("ok"))
    info: dict[str, Any] = {
        "python": _guarded(probe_python),
        "platform": _guarded(probe_platform),
        "deblurrt": _guarded(probe_deblurrt),
        "numpy": _guarded(probe_numpy),
        "torch": _guarded(probe_torch),
        "onnx": _guarded(probe_onnx),
        "onnxruntime": _guarded(probe_onnxruntime),
        "tensorrt": _guarded(probe_tensorrt, on_jetson),
        "cuda_python": _guarded(probe_cuda_python),
        "pycuda": _guarded(probe_pycuda),
        "gpu": _guarded(probe_gpu, on_jetson),
        "jetson": jetson,
        "opencv": _guarded(probe_opencv),
    }
    info["can_run"] = summarize(info)
    return info


# --------------------------------------------------------------------------------------------- report


def _yes(flag: bool | None) -> str:
    return "?" if flag is None else ("YES" if flag else "NO")


def _describe(name: str, s: dict[str, Any]) -> str:
    """One line of details for a section that is ok."""
    if name == "python":
        venv = ""
        if s.get("venv"):
            venv = " (venv, system site-packages)" if s.get("venv_system_site_packages") else " (venv)"
        return f"{s['version']} {s['implementation']} — {s['executable']}{venv}"
    if name == "platform":
        cores = f"{s['cpu_count']} CPUs" if s.get("cpu_count") else "CPUs unknown"
        if s.get("cpu_usable") is not None and s["cpu_usable"] != s.get("cpu_count"):
            cores += f" ({s['cpu_usable']} usable)"
        return f"{s['system']} {s['release']} {s['machine']} — {s.get('cpu') or 'unknown CPU'}, {cores}"
    if name == "deblurrt":
        stale = ""
        if s.get("installed_version") and s["installed_version"] != s.get("version"):
            stale = f", installed metadata says {s['installed_version']}"
        return f"{s['version']} ({s['path']}{stale})"
    if name == "torch":
        if s.get("cuda_available"):
            return f"{s['version']} — CUDA {s['cuda_build']}: {s['device']} (compute {s['capability']})"
        return f"{s['version']} — CPU only: {s.get('cuda_reason', 'CUDA not available')}"
    if name == "onnxruntime":
        gpu = [
            label
            for key, label in (("cuda_provider", "CUDA"), ("tensorrt_provider", "TensorRT"))
            if s.get(key)
        ]
        note = f"GPU via {' and '.join(gpu)}" if gpu else "no CUDA/TensorRT provider"
        return f"{s['version']} — {', '.join(s['providers'])} ({note})"
    if name == "cuda_python":
        devices = "; ".join(
            f"{d['name']} (compute {d['capability']}, {d['memory_mib']} MiB)" if "name" in d else d["error"]
            for d in s["devices"]
        )
        warnings_text = "".join(f" — {s[key]}" for key in ("mismatch", "tensorrt_mismatch") if s.get(key))
        return (
            f"{s['version']} — {devices}; driver CUDA {s['driver_version']}, runtime {s['runtime_version']}"
            f"{warnings_text}"
        )
    if name == "pycuda":
        return f"{s['version']} — {s['device_count']} device(s)"
    if name == "gpu":
        return "; ".join(f"{g['name']}, driver {g['driver']}, {g['memory']}" for g in s["gpus"])
    if name == "jetson":
        parts = [s.get("model") or "Jetson", f"L4T {s['l4t']}" if s.get("l4t") else "L4T unknown"]
        if s.get("power_mode"):
            parts.append(f"power mode {s['power_mode']}")
        return ", ".join(parts)
    if name == "opencv":
        return (
            f"{s['version']} — FFmpeg {_yes(s['ffmpeg'])}, GStreamer {_yes(s['gstreamer'])}, "
            f"V4L2 {_yes(s['v4l2'])}, GUI {s['gui'] or '?'}"
        )
    return str(s.get("version", "ok"))


def _failure(name: str, s: dict[str, Any]) -> str:
    """One line for a section that is not ok: what was found, why not, and the fix."""
    text = s.get("reason", "not ok")
    if name == "cuda_python" and s.get("installed"):
        versions = f"runtime {s.get('runtime_version')}, driver {s.get('driver_version') or 'none'}"
        text = f"{s.get('version')} (installed) — {text} ({versions})"
        if s.get("tensorrt_mismatch"):
            text += f" — {s['tensorrt_mismatch']}"
    elif s.get("version"):
        text = f"{s['version']} — {text}"
    if s.get("hint"):
        text += f" — {s['hint']}"
    return text


def format_report(info: dict[str, Any], width: int | None = None) -> str:
    """The human-readable report of :func:`collect` data: one aligned line per section, then "Can run"."""
    if width is None:
        width = max(80, min(shutil.get_terminal_size((110, 24)).columns, 140))
    label_width = max(len(label) for label in LABELS.values()) + 2

    def line(label: str, text: str, indent: int = 0) -> str:
        prefix = " " * indent + label.ljust(label_width - indent)
        return textwrap.fill(
            text,
            width=width,
            initial_indent=prefix,
            subsequent_indent=" " * label_width,
            break_long_words=False,
            break_on_hyphens=False,
        )

    lines = ["deblurrt doctor — what this machine can run", ""]
    for name, label in LABELS.items():
        section = info.get(name)
        if section is None:
            continue
        lines.append(line(label, _describe(name, section) if section.get("ok") else _failure(name, section)))

    verdict = info.get("can_run")
    if verdict:
        names = list(verdict["backends"]) + list(verdict["sources"])
        column = max(len(n) for n in names) + 4
        for title, group in (("Backends", verdict["backends"]), ("Stream sources", verdict["sources"])):
            lines += ["", f"{title} (can run here)"]
            for name, result in group.items():
                status = "yes" if result["ok"] else "no"
                detail = f" — via {result['via']}" if result.get("via") else ""
                if not result["ok"]:
                    detail = f" — {result['reason']}"
                lines.append(
                    textwrap.fill(
                        f"{status}{detail}",
                        width=width,
                        initial_indent="  " + name.ljust(column - 2),
                        subsequent_indent=" " * column,
                        break_long_words=False,
                        break_on_hyphens=False,
                    )
                )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``deblurrt doctor``'s options."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the findings as one JSON object (a key per section, each with ok/reason/hint)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the report (or JSON with ``--json``). Always 0: doctor reports, it does not judge."""
    info = collect()
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0


if __name__ == "__main__":
    # ``python -m deblurrt.doctor`` works even when another subcommand's module is broken.
    _parser = argparse.ArgumentParser(
        prog="deblurrt doctor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(_parser)
    raise SystemExit(run(_parser.parse_args()))
