"""The GPU kit on CPU: gpu_check.sh / gpu_train.sh dry runs (plan, argument and file checks), the check's driver
recording failures and going on, its deadline, and its report."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scripts_loader import load_script

REPO = Path(__file__).resolve().parents[1]
CHECK_SH = REPO / "scripts" / "gpu_check.sh"
TRAIN_SH = REPO / "scripts" / "gpu_train.sh"
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def _run(argv, env=None, timeout=120):
    merged = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", *map(str, argv)], capture_output=True, text=True, env=merged, timeout=timeout,
                          cwd=REPO, check=False)


def _driver():
    return load_script("gpu_check", "gpu_check_driver")


# ------------------------------------------------------------------------------------------------ gpu_check

def test_gpu_check_dry_run_prints_the_plan_and_creates_nothing(tmp_path):
    out = tmp_path / "check"
    done = _run([CHECK_SH, out, "--dry-run"])
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for expected in ("deblurrt doctor --json", "engine unet_small_prior fp16 static",
                     "engine unet_nano_prior int8+fp16 dynamic", "bench", "synthetic://", "pytest -m gpu",
                     "--system-site-packages", "weights/unet_small_prior.onnx"):
        assert expected in text, expected
    assert not out.exists()


@pytest.mark.parametrize("extra, pin", [("trt-cu12", "cuda-python>=12.3,<13"), ("trt-cu13", "cuda-python>=13,<14")])
def test_gpu_check_installs_the_cuda_python_of_the_driver(tmp_path, extra, pin):
    done = _run([CHECK_SH, tmp_path / "c", "--dry-run"], {"CUDA_EXTRA": extra})
    assert done.returncode == 0 and f"[{extra}]" in done.stdout and pin in done.stdout


@pytest.mark.parametrize("argv, env, message", [
    ([], {}, "OUT_DIR is missing"),
    (["a", "b"], {}, "one OUT_DIR only"),
    (["a", "--fast"], {}, "unknown option"),
    (["a", "--dry-run"], {"GPU_CHECK_BUDGET_S": "soon"}, "whole number of seconds"),
    (["a", "--dry-run"], {"CUDA_EXTRA": "trt-cu11"}, "trt-cu12 or trt-cu13"),
    (["a", "--dry-run"], {"PYTHON": "/no/such/python"}, "older than Python 3.10"),
])
def test_gpu_check_refuses_bad_arguments(tmp_path, argv, env, message):
    done = _run([CHECK_SH, *[tmp_path / a if a[0] != "-" else a for a in argv]], env)
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.skipif(HAS_TRT, reason="with TensorRT the engine steps would really build")
def test_gpu_check_driver_records_each_failure_and_goes_on(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run([sys.executable, REPO / "scripts" / "gpu_check.py", out, "--only", "engine,bench,run",
                           "--deadline", str(time.time() + 300)], capture_output=True, text=True, cwd=REPO,
                          timeout=300, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    steps = {step["name"]: step for step in results["steps"]}
    engines = [name for name in steps if name.startswith("engine ")]
    assert len(engines) == 8 and all(steps[name]["status"] == "failed" for name in engines)
    assert all("tensorrt" in case["error"] for case in results["engines"])
    assert steps["bench"]["status"] == steps["run"]["status"] == "skipped"
    assert "no static engine" in steps["bench"]["note"]
    report = (out / "report.md").read_text()
    assert "| engine unet_small_prior fp16 static | failed |" in report and "Engines that failed" in report


def test_gpu_check_driver_skips_what_the_deadline_leaves_no_time_for(tmp_path):
    out = tmp_path / "late"
    done = subprocess.run([sys.executable, REPO / "scripts" / "gpu_check.py", out, "--deadline",
                           str(time.time() + 5)], capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    results = json.loads((out / "results.json").read_text())
    assert done.returncode == 1 and results["steps"]
    assert all(step["status"] == "skipped" and "out of time" in step["note"] for step in results["steps"])


def test_gpu_check_report_tables():
    driver = _driver()
    results = {"started": "now", "python": "py", "setup": [{"name": "venv", "ok": True, "seconds": 3}],
               "steps": [{"name": "doctor", "status": "passed", "seconds": 1.0}],
               "doctor": {"gpu": {"gpus": [{"name": "NVIDIA H200", "driver": "580.1"}]},
                          "tensorrt": {"version": "10.16.1"}, "cuda_python": {"version": "12.9.0",
                                                                              "driver_version": "13.0"}},
               "engines": [{"model": "unet_small_prior", "precision": "fp16", "profile": "static", "build_s": 20.5,
                            "ok": True, "sizes": [{"size": "640x360", "psnr_vs_ort_fp32": 58.1,
                                                   "psnr_vs_ort_same": 61.0, "ort_same_vs_fp32": 64.6,
                                                   "graph_max_abs_diff": 0.0, "graph_active": True, "ok": True}]}],
               "bench": [{"model": "unet_small_prior.fp16.static.engine", "precision": "fp16", "cuda_graph": True,
                          "width": 640, "height": 360, "p50_ms": 1.2, "p99_ms": 1.5, "fps": 800.0,
                          "with_copies_p50_ms": 1.9}],
               "run": {"frames_out": 150}, "gpu_tests": {"tests": 4, "failures": 0, "errors": 0, "skipped": 0}}
    text = driver.markdown(results)
    assert "NVIDIA H200 (driver 580.1); TensorRT 10.16.1" in text
    assert "| unet_small_prior | fp16 | static | 20.5 | 640x360 | 58.1 | 61.0 | 64.6 | 0.0 | True | True |" in text
    assert "| unet_small_prior.fp16.static.engine | fp16 | True | 640x360 | 1.2 | 1.5 | 800.0 | 1.9 |" in text
    assert driver.float_psnr([0.5, 0.5], [0.5, 0.5]) is None and driver.float_psnr([0.0], [0.1]) == 20.0


# ------------------------------------------------------------------------------------------------ gpu_train

@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.jpg"):
        (folder / name).write_bytes((REPO / "assets" / "coffee.png").read_bytes())
    return folder


def test_gpu_train_dry_run_plan(tmp_path, photos):
    out = tmp_path / "train"
    done = _run([TRAIN_SH, out, "30", "--dry-run", "--photos", photos])
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "unet_small_prior unet_small side by side" in text and "30 min of training each" in text
    assert f"unet_small_prior from: {REPO}/weights/unet_small_prior.safetensors" in text
    assert f"unet_small from: {REPO}/weights/unet_small_prior.safetensors" in text  # both start from one point
    assert "run.amp=true" in text and "run.device=cuda" in text
    assert "deblurrt eval CHECKPOINT --data" in text  # with --photos: the old recipe's paired validation
    assert "(hard stop after 2430 s" in text and not out.exists()


def test_gpu_train_dry_run_uses_the_quality_recipe_with_the_shared_data(tmp_path, photos):
    data_root = tmp_path / "shared"
    (data_root / "photos_more").mkdir(parents=True)
    photos.rename(data_root / "photos")
    done = _run([TRAIN_SH, tmp_path / "o", "5", "--dry-run", "--data-root", data_root],
                env={"DEBLURRT_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert "configs/data/blur_v3.yaml" in done.stdout and "deblurrt validate CHECKPOINT" in done.stdout
    assert f"validation  {tmp_path / 'cache' / 'val_v1'}" in done.stdout
    missing = _run([TRAIN_SH, tmp_path / "o", "5", "--dry-run", "--data-root", tmp_path / "nowhere"])
    assert missing.returncode == 2 and "lacks photos/ and photos_more/" in missing.stderr


def test_gpu_train_options(tmp_path, photos):
    state = tmp_path / "last.safetensors"
    state.write_bytes(b"x")
    val = tmp_path / "val"
    (val / "blur").mkdir(parents=True)
    (val / "sharp").mkdir()
    done = _run([TRAIN_SH, tmp_path / "o", "2.5", "--dry-run", "--photos", photos, "--init", state, "--no-twin",
                 "--val", val])
    assert done.returncode == 0, done.stderr
    assert f"unet_small_prior from: {state}" in done.stdout and "unet_small from" not in done.stdout
    assert f"validation  {val}" in done.stdout and "150 s" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["0"], "MINUTES must be a number >= 1"),
    (["soon"], "MINUTES must be a number >= 1"),
    (["5", "--init", "/no/such.safetensors"], "--init '/no/such.safetensors' does not exist"),
    (["5", "--twin-init", "/no/twin.safetensors"], "--twin-init '/no/twin.safetensors' does not exist"),
    (["5", "--val", "/no/val"], "needs blur/ and sharp/"),
    (["5", "--bogus"], "unknown option"),
])
def test_gpu_train_refuses_bad_arguments(tmp_path, photos, args, message):
    done = _run([TRAIN_SH, tmp_path / "o", *args, "--dry-run", "--photos", photos])
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_gpu_train_needs_photos(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _run([TRAIN_SH, tmp_path / "o", "5", "--dry-run", "--photos", empty])
    assert done.returncode == 2 and "holds 0 image(s)" in done.stderr
    assert _run([TRAIN_SH, tmp_path / "o", "--dry-run"]).returncode == 2  # MINUTES missing


def test_the_validation_command_is_one_marked_line():
    lines = TRAIN_SH.read_text().splitlines()
    assert sum("# <<< VALIDATION COMMAND (issue 11)" in line for line in lines) == 1
    assert sum(">>> VALIDATION (issue 11)" in line for line in lines) == 1


def test_readme_documents_the_kit():
    readme = (REPO / "README.md").read_text()
    for expected in ("scripts/gpu_check.sh OUT_DIR", "make gpu-check", "scripts/gpu_train.sh OUT_DIR MINUTES",
                     "--dry-run", "trt-cu12", "trt-cu13"):
        assert expected in readme, expected


def test_gpu_check_run_step_reads_the_pipeline_stats(tmp_path):
    # the step itself on CPU: any model the runtime runs stands in for the engine
    driver = _driver()
    check = driver.Check(tmp_path, time.time() + 120, None, run_uri="synthetic://?size=128x96&frames=3&seed=0&live=0")
    check.results["engines"] = [{"profile": "static", "engine": str(REPO / "weights" / "unet_nano_prior.onnx")}]
    step = next(step for step in driver.plan(tmp_path) if step.kind == "run")
    outcome = check._run(step, 100)
    assert outcome["status"] == "passed", outcome["tail"]
    assert check.results["run"]["frames_out"] == 3 and check.results["run"]["psnr_db"]["frames"] == 3
    assert (tmp_path / "run" / "run.mp4").stat().st_size > 0


# ------------------------------------------------------------------------------------------- gpu_finetune

FINETUNE_SH = REPO / "scripts" / "gpu_finetune.sh"


def test_gpu_finetune_dry_run_resolves_paths_before_anything_moves(tmp_path, photos):
    # the lent machine runs from a temporary package folder: a relative --model path must already be absolute
    done = _run([FINETUNE_SH, tmp_path / "o", "60", "--dry-run", "--photos", photos,
                 "--model", "unet_nano_prior=weights/unet_nano_prior.safetensors",
                 "--model", "unet_small_prior=none"],
                env={"REUSE": "3", "BATCH": "4", "PYTHON": os.path.relpath(sys.executable, REPO)})
    assert done.returncode == 0, done.stderr
    assert f"model.init={REPO}/weights/unet_nano_prior.safetensors" in done.stdout
    assert f"$ {sys.executable} -m deblurrt train" in done.stdout  # a relative PYTHON made absolute
    assert "model.name=unet_small_prior model.init= " in done.stdout  # none: from scratch
    for expected in ("configs/data/blur_v3.yaml", "run.time_budget_s=60", "data.reuse=3", "data.batch_size=4",
                     f"data.root={photos}", "2 model(s) side by side"):
        assert expected in done.stdout, expected
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, env, message", [
    (["10"], {}, "SECONDS must be a whole number >= 30"),
    (["60"], {}, "no --model given"),
    (["60", "--model", "unet_nano_prior"], {}, "takes NAME=INIT"),
    (["60", "--model", "unet_nano_prior=/no/such.safetensors"], {}, "does not exist"),
    (["60", "--model", "no_such_model=none"], {}, "no configs/no_such_model.yaml"),
    (["60", "--model", "unet_nano_prior=none"], {"REUSE": "0"}, "REUSE must be a whole number >= 1"),
    (["60", "--model", "unet_nano_prior=none"], {"DEVICE": "tpu"}, "DEVICE must be cuda or cpu"),
    (["60", "--model", "unet_nano_prior=none", "--model", "unet_nano_prior=none"], {}, "is given twice"),
])
def test_gpu_finetune_refuses_bad_arguments(tmp_path, photos, args, env, message):
    done = _run([FINETUNE_SH, tmp_path / "o", *args, "--photos", photos, "--dry-run"], env=env)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_gpu_finetune_runs_from_an_uninstalled_source_tree(tmp_path, photos):
    # what a lent GPU machine without a package index runs: the package assembled from this checkout on
    # PYTHONPATH (FROM_SOURCE=1 forces it here, where deblurrt is installed in editable mode)
    out = tmp_path / "o"
    done = _run([FINETUNE_SH, out, "30", "--photos", photos, "--model",
                 "unet_nano_prior=weights/unet_nano_prior.safetensors"],
                env={"DEVICE": "cpu", "WORKERS": "1", "BATCH": "2", "REUSE": "2", "FROM_SOURCE": "1",
                     "OVERRIDES": "data.crop=64 run.threads=1"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deblurrt from the source tree" in done.stdout
    for suffix in (".safetensors", ".metrics.csv", ".config.yaml", ".log"):
        assert (out / f"unet_nano_prior{suffix}").is_file(), suffix
    import yaml

    saved = yaml.safe_load((out / "unet_nano_prior.config.yaml").read_text())
    assert saved["model"]["init"] == str(REPO / "weights" / "unet_nano_prior.safetensors")
    assert saved["data"]["reuse"] == 2 and saved["run"]["time_budget_s"] == 0.0 and saved["run"]["steps"] < 1_000_000


def test_pack_photos_fits_the_budget_and_keeps_crops_possible(tmp_path):
    import cv2
    import numpy as np

    source = tmp_path / "src"
    source.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"wide": (300, 1400), "big": (900, 1200), "small": (200, 240)}.items():
        cv2.imwrite(str(source / f"{name}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    out = tmp_path / "packed"
    done = subprocess.run([sys.executable, REPO / "scripts" / "pack_photos.py", source, out, "--max-side", "512",
                           "--min-short", "256", "--budget-mib", "2"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    sizes = {p.stem: cv2.imread(str(p)).shape[:2] for p in out.glob("*.webp")}
    assert sizes["big"] == (384, 512)  # long side capped
    assert sizes["wide"] == (256, 1195)  # the short side kept at --min-short: the long side stays longer
    assert sizes["small"] == (200, 240)  # never enlarged
    assert sum(p.stat().st_size for p in out.glob("*.webp")) <= 2 * 2**20
    assert "3 photos" in (out / "PACK.txt").read_text()
    again = subprocess.run([sys.executable, REPO / "scripts" / "pack_photos.py", source, out], capture_output=True,
                           text=True, check=False)
    assert again.returncode == 2 and "is not empty" in again.stderr
    clash = tmp_path / "clash"
    clash.mkdir()
    for name in ("a.png", "a.jpg"):
        cv2.imwrite(str(clash / name), np.zeros((300, 300, 3), np.uint8))
    clashing = subprocess.run([sys.executable, REPO / "scripts" / "pack_photos.py", clash, tmp_path / "c"],
                              capture_output=True, text=True, check=False)
    assert clashing.returncode == 2 and "would both be written as a.webp" in clashing.stderr
    tight = subprocess.run([sys.executable, REPO / "scripts" / "pack_photos.py", source, tmp_path / "t",
                            "--budget-mib", "0.01"], capture_output=True, text=True, check=False)
    assert tight.returncode == 2 and "do not fit" in tight.stderr
