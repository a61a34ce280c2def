"""``deblurrt doctor``: it reports this machine correctly and never crashes when libraries are missing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from blocked_imports import run_without

from deblurrt import doctor

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    """The current environment with the checkout first on PYTHONPATH, so a clone works without installing."""
    extra = os.environ.get("PYTHONPATH")
    path = str(REPO_ROOT) + (os.pathsep + extra if extra else "")
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture(scope="module")
def info() -> dict:
    return doctor.collect()


# Verbatim from cv2.getBuildInformation() of the opencv-python-headless 5.0.0 wheel (Linux x86_64).
OPENCV5_HEADLESS = """\
  GUI:                           NONE
    VTK support:                 NO
    Built-in Unicode font:       YES

  Media I/O:
    ZLib:                        /usr/lib64/libz.so (ver 1.2.11)
    GIF:                         YES

  Video I/O:
    FFMPEG:                      YES
      avcodec:                   YES (62.28.101)
      avformat:                  YES (62.12.101)
      avutil:                    YES (60.26.101)
      swscale:                   YES (9.5.101)
    GStreamer:                   NO
    v4l/v4l2:                    YES (linux/videodev2.h)
    Orbbec:                      NO

  Parallel framework:            pthreads
"""

# The layout of a JetPack OpenCV 4 build: GStreamer on, a GTK GUI, the GUI name on the header line.
OPENCV4_JETSON = """\
  GUI:                           GTK2
    GTK+:                        YES (ver 2.24.32)
      GThread :                  YES (ver 2.64.6)
      GtkGlExt:                  NO

  Video I/O:
    DC1394:                      NO
    FFMPEG:                      NO
    GStreamer:                   YES (1.16.3)
    v4l/v4l2:                    YES (linux/videodev2.h)

  Parallel framework:            TBB (ver 2020.1 interface 11101)
"""

# The OpenCV 3 layout: an empty "GUI:" with the toolkit nested, GStreamer's YES on a nested "base:" line,
# and one "V4L/V4L2: NO/YES" line for two backends. Also CRLF line ends.
OPENCV3 = (
    "  GUI: \r\n"
    "    QT:                          NO\r\n"
    "    GTK+ 3.x:                    YES (ver 3.22.30)\r\n"
    "    OpenGL support:              NO\r\n"
    "\r\n"
    "  Video I/O:\r\n"
    "    FFMPEG:                      NO\r\n"
    "    GStreamer:                   \r\n"
    "      base:                      YES (ver 1.0)\r\n"
    "      video:                     YES (ver 1.0)\r\n"
    "    V4L/V4L2:                    NO/YES\r\n"
    "\r\n"
    "  Parallel framework:            pthreads\r\n"
)

# A Windows wheel: no V4L2 at all, webcams through DirectShow / Media Foundation.
OPENCV4_WINDOWS = """\
  GUI:                           WIN32UI
    Win32 UI:                    YES

  Video I/O:
    DC1394:                      NO
    FFMPEG:                      YES (prebuilt binaries)
      avcodec:                   YES (58.134.100)
    GStreamer:                   NO
    DirectShow:                  YES
    Media Foundation:            YES
      DXVA:                      YES
"""


@pytest.mark.parametrize(
    ("text", "ffmpeg", "gstreamer", "v4l2", "gui"),
    [
        (OPENCV5_HEADLESS, True, False, True, "NONE"),
        (OPENCV4_JETSON, False, True, True, "GTK2"),
        (OPENCV3, False, True, True, "GTK+ 3.x"),
        (OPENCV4_WINDOWS, True, False, None, "WIN32UI"),
    ],
    ids=["opencv5-headless", "opencv4-jetson", "opencv3", "opencv4-windows"],
)
def test_opencv_build_parser_on_fixed_excerpts(text, ffmpeg, gstreamer, v4l2, gui):
    parsed = doctor.parse_opencv_build_info(text)
    found = (parsed["ffmpeg"], parsed["gstreamer"], parsed["v4l2"], parsed["gui"])
    assert found == (ffmpeg, gstreamer, v4l2, gui)


def test_opencv_build_parser_keeps_only_video_io_entries():
    video_io = doctor.parse_opencv_build_info(OPENCV5_HEADLESS)["video_io"]
    # Nested avcodec/avformat lines and the Media I/O / Parallel framework sections stay out.
    assert video_io == {
        "FFMPEG": "YES",
        "GStreamer": "NO",
        "v4l/v4l2": "YES (linux/videodev2.h)",
        "Orbbec": "NO",
    }


def test_opencv_build_parser_on_unrelated_text_says_unknown():
    parsed = doctor.parse_opencv_build_info("General configuration for OpenCV\n  Version control: 5.0\n")
    assert parsed == {"ffmpeg": None, "gstreamer": None, "v4l2": None, "gui": None, "video_io": {}}


def test_opencv_section_matches_the_real_cv2(info):
    cv2 = pytest.importorskip("cv2")
    section = info["opencv"]
    assert section["ok"] and section["version"] == cv2.__version__
    build = cv2.getBuildInformation()
    # Cross-check each flag against the raw text rather than against the parser itself.
    for flag, name in (("ffmpeg", "FFMPEG"), ("gstreamer", "GStreamer")):
        raw = next(line for line in build.splitlines() if line.strip().startswith(name + ":"))
        assert section[flag] is raw.split(":", 1)[1].strip().startswith("YES"), raw
    gui_line = next(line for line in build.splitlines() if line.strip().startswith("GUI:"))
    if gui_line.split(":", 1)[1].strip():
        assert section["gui"] == gui_line.split(":", 1)[1].strip()  # "NONE" in the headless wheel
    assert section["gui"], "the GUI line of the build information was not found"


def test_collect_reports_python_and_numpy(info):
    import numpy

    assert info["python"]["ok"]
    assert info["python"]["version"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert info["python"]["executable"] == sys.executable
    assert info["numpy"] == {"ok": True, "version": numpy.__version__}
    assert info["platform"]["cpu_count"] == os.cpu_count()
    import deblurrt

    assert info["deblurrt"]["version"] == deblurrt.__version__


def test_collect_is_plain_json(info):
    assert json.loads(json.dumps(info)) == info
    for name, section in info.items():
        assert isinstance(section["ok"], bool), name
        if not section["ok"]:
            assert section["reason"], name


def test_onnxruntime_offers_the_cpu_provider(info):
    pytest.importorskip("onnxruntime")
    section = info["onnxruntime"]
    assert section["ok"]
    assert "CPUExecutionProvider" in section["providers"]
    assert info["can_run"]["backends"]["onnxruntime-cpu"]["ok"]


def test_tensorrt_missing_is_reported_with_an_install_hint(info):
    if importlib.util.find_spec("tensorrt") is not None:
        assert info["tensorrt"]["ok"]
        return
    section = info["tensorrt"]
    assert not section["ok"]
    assert section["reason"] == "not installed"
    assert "JetPack" in section["hint"] and "deblurrt[trt-cu12]" in section["hint"]
    assert not info["can_run"]["backends"]["tensorrt"]["ok"]
    assert "TensorRT not installed" in info["can_run"]["backends"]["tensorrt"]["reason"]


def test_cuda_python_probe_decodes_the_cuda_error(info):
    pytest.importorskip("cuda.bindings.runtime")
    section = info["cuda_python"]
    assert section["installed"] and section["version"]
    if section["ok"]:
        assert section["device_count"] >= 1 and section["devices"][0]["capability"]
    else:
        # Without a driver cudaGetDeviceCount returns an error code; it must arrive as its name, not a crash.
        assert section["reason"].startswith("cudaError"), section["reason"]
        assert section["error"].startswith("cudaError") and section["hint"]


def test_format_report_has_a_line_per_section_and_the_verdict(info):
    report = doctor.format_report(info, width=100)
    lines = report.splitlines()
    for label in doctor.LABELS.values():
        assert any(line.startswith(label + " ") for line in lines), label
    assert "onnxruntime-cpu" in report and "files / RTSP" in report
    assert all(len(line) <= 100 for line in lines)


def test_l4t_release_parser():
    text = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1\n"
    assert doctor.parse_l4t_release(text) == "35.4.1"
    assert doctor.parse_l4t_release("garbage") is None


def test_cli_json_output_parses():
    done = subprocess.run(
        [sys.executable, "-m", "deblurrt", "doctor", "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["python"]["version"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert set(doctor.LABELS) | {"can_run"} == set(data)


BLOCKED = ("torch", "onnxruntime", "onnx", "tensorrt")


def test_collect_survives_without_torch_onnxruntime_onnx_tensorrt():
    # A fresh interpreter where the optional libraries cannot be imported, as where they are not installed.
    done = run_without(
        """
        import json
        from deblurrt import doctor
        info = doctor.collect()
        doctor.format_report(info)
        print(json.dumps(info))
        """,
        BLOCKED,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    for name in BLOCKED:
        assert not data[name]["ok"], name
        assert "blocked for this test" in data[name]["reason"], data[name]
    assert "deblurrt[train]" in data["torch"]["hint"]
    backends = data["can_run"]["backends"]
    assert not any(verdict["ok"] for verdict in backends.values())
    assert data["numpy"]["ok"] and data["python"]["ok"]


# What collect() would find on a Jetson with JetPack: fixed data, to exercise the GPU paths of
# summarize() and format_report() that this CPU-only machine cannot reach.
JETSON_INFO = {
    "python": {
        "ok": True,
        "version": "3.10.12",
        "implementation": "CPython",
        "executable": "/usr/bin/python3",
        "venv": True,
        "venv_system_site_packages": True,
    },
    "platform": {
        "ok": True,
        "system": "Linux",
        "release": "5.15.136-tegra",
        "machine": "aarch64",
        "platform": "Linux-aarch64",
        "cpu": "ARMv8 Processor rev 1 (v8l)",
        "cpu_count": 8,
        "cpu_usable": 6,
    },
    "torch": {
        "ok": True,
        "version": "2.3.0",
        "cuda_build": "12.2",
        "cuda_available": True,
        "device": "Orin",
        "capability": "8.7",
    },
    "onnxruntime": {
        "ok": True,
        "version": "1.18.0",
        "providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        "cuda_provider": True,
        "tensorrt_provider": True,
    },
    "tensorrt": {"ok": True, "version": "8.6.2"},
    "cuda_python": {
        "ok": True,
        "installed": True,
        "version": "12.2.1",
        "driver_version": "12.2",
        "runtime_version": "12.2",
        "device_count": 1,
        "devices": [
            {"index": 0, "name": "Orin", "capability": "8.7", "memory_mib": 62841, "integrated": True}
        ],
    },
    "gpu": {"ok": False, "reason": "no nvidia-smi", "hint": "normal on older JetPack"},
    "jetson": {
        "ok": True,
        "model": "NVIDIA Jetson AGX Orin Developer Kit",
        "l4t": "36.3.0",
        "power_mode": "MAXN",
    },
    "opencv": {"ok": True, "version": "4.8.0", **doctor.parse_opencv_build_info(OPENCV4_JETSON)},
}


def test_summary_and_report_on_a_jetson():
    verdict = doctor.summarize(JETSON_INFO)
    assert all(result["ok"] for result in verdict["backends"].values())
    assert verdict["sources"]["csi://"] == {"ok": True, "via": "GStreamer"}
    assert verdict["sources"]["USB camera"] == {"ok": True, "via": "V4L2"}
    assert verdict["sources"]["files / RTSP"] == {"ok": True, "via": "GStreamer"}  # this build has no FFmpeg
    report = doctor.format_report({**JETSON_INFO, "can_run": verdict}, width=100)
    assert "Orin (compute 8.7, 62841 MiB)" in report
    assert "NVIDIA Jetson AGX Orin Developer Kit, L4T 36.3.0, power mode MAXN" in report
    assert "8 CPUs (6 usable)" in report


def test_onnxruntime_without_cuda_provider_cannot_use_the_gpu():
    info = {
        **JETSON_INFO,
        "onnxruntime": {
            **JETSON_INFO["onnxruntime"],
            "providers": ["CPUExecutionProvider"],
            "cuda_provider": False,
            "tensorrt_provider": False,
        },
    }
    verdict = doctor.summarize(info)["backends"]
    assert not verdict["onnxruntime-cuda"]["ok"]
    assert "CUDAExecutionProvider" in verdict["onnxruntime-cuda"]["reason"]
    assert verdict["onnxruntime-cpu"]["ok"]
