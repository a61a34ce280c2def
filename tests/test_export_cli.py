"""'deblurrt export' end to end: subprocess runs on a saved checkpoint, exit codes and messages."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from deblurrt.cli import main
from deblurrt.train.checkpoint import save_model
from deblurrt.train.models import create_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from deblurrt.export.images import synthetic_pair  # noqa: E402
from deblurrt.export.onnx_export import read_metadata  # noqa: E402

FAST = ["--calib-shape", "64x64", "--calib-count", "4", "--eval-count", "2", "--eval-shape", "96x64"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(create_model("unet_tiny_prior"), tmp_path_factory.mktemp("ckpt") / "unet.safetensors")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deblurrt", "export", *args], capture_output=True, text=True,
                          timeout=300)


def test_fp32_onnx_end_to_end(checkpoint, tmp_path):
    out = tmp_path / "model.onnx"
    result = _cli(str(checkpoint), "--out", str(out), *FAST)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "parity vs PyTorch: OK" in result.stdout
    assert "TensorRT readiness: OK" in result.stdout
    assert "simplified: onnxsim" in result.stdout
    meta = read_metadata(out)
    assert meta["deblurrt.model"] == "unet_tiny_prior" and meta["deblurrt.precision"] == "fp32"
    report = json.loads((tmp_path / "model.onnx.accuracy.json").read_text())
    assert [row["precision"] for row in report["rows"]] == ["input", "fp32"]


def test_int8_triton_with_calibration_folder_and_comparison(checkpoint, tmp_path):
    calib = tmp_path / "frames" / "blur"
    calib.mkdir(parents=True)
    for i in range(3):
        blurry, _ = synthetic_pair(80, 100, seed=40 + i)
        cv2.imwrite(str(calib / f"{i}.png"), (blurry[..., ::-1] * 255).round().astype(np.uint8))
    repo = tmp_path / "repo"
    result = _cli(str(checkpoint), "--format", "triton", "--precision", "int8", "--calib", str(tmp_path / "frames"),
                  "--calib-method", "percentile", "--compare-all", "--max-batch", "4", "--out", str(repo),
                  "--name", "deblur", *FAST)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "percentile calibration on 3 frames" in result.stdout
    config = (repo / "deblur" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config and "max_batch_size: 4" in config
    assert 'name: "blurry"' in config and "dims: [ 3, -1, -1 ]" in config and "dynamic_batching" in config
    model = repo / "deblur" / "1" / "model.onnx"
    assert read_metadata(model)["deblurrt.precision"] == "int8"
    report = json.loads((repo / "deblur" / "accuracy.json").read_text())
    rows = {row["precision"]: row for row in report["rows"]}
    assert set(rows) == {"input", "fp32", "fp16", "int8"}
    assert rows["int8"]["psnr_vs_fp32"] > 30 and rows["fp16"]["psnr_vs_fp32"] > 40


def test_int8_budget_on_a_separate_pair_set_is_saved_in_the_report(checkpoint, tmp_path, capsys):
    pairs = tmp_path / "pairs"
    for sub in ("blur", "sharp"):
        (pairs / sub).mkdir(parents=True)
    for i in range(2):
        blurry, sharp = synthetic_pair(64, 96, seed=70 + i)
        for sub, image in (("blur", blurry), ("sharp", sharp)):
            cv2.imwrite(str(pairs / sub / f"{i}.png"), (image[..., ::-1] * 255).round().astype(np.uint8))
    out = tmp_path / "m8.onnx"
    # A 0 dB budget is never met by INT8, so exactly --keep-top groups are tried and kept.
    assert main(["export", str(checkpoint), "--precision", "int8", "--int8-budget", "0", "--keep-top", "1",
                 "--sensitivity-eval", str(pairs), "--out", str(out), *FAST]) == 0
    text = capsys.readouterr().out
    assert f"sensitivity measured on 2 pair(s) from {pairs}" in text and "NOT within budget" in text
    report = json.loads(out.with_name("m8.onnx.accuracy.json").read_text())
    budget = report["int8_budget"]
    assert budget["budget_db"] == 0 and budget["source"] == str(pairs) and budget["count"] == 2
    assert budget["max_groups"] == 1 and budget["within"] is False
    assert [len(step["kept"]) for step in budget["steps"]] == [0, 1]
    chosen = next(step for step in budget["steps"] if step["chosen"])
    kept_nodes = {node for row in report["sensitivity"] if row["group"] in chosen["kept"] for node in row["nodes"]}
    float_nodes = set(read_metadata(out)["deblurrt.int8.float_nodes"].split(","))
    assert kept_nodes <= float_nodes


def test_sensitivity_eval_without_sharp_exits_2(checkpoint, tmp_path, capsys):
    assert main(["export", str(checkpoint), "--precision", "int8", "--int8-budget", "0.3",
                 "--sensitivity-eval", str(tmp_path)]) == 2
    assert "needs blur/ and sharp/ subfolders" in capsys.readouterr().err


def test_fp16_in_process_with_fp16_io(checkpoint, tmp_path, capsys):
    out = tmp_path / "m16.onnx"
    assert main(["export", str(checkpoint), "--precision", "fp16", "--fp16-io", "--out", str(out), *FAST]) == 0
    text = capsys.readouterr().out
    assert "FP16 I/O" in text and "fp16" in text
    assert read_metadata(out)["deblurrt.io_dtype"] == "float16"
    assert out.with_name("m16.onnx.accuracy.json").is_file()


def test_parity_failure_fails_the_export_with_the_measured_error(checkpoint, tmp_path, capsys):
    out = tmp_path / "never.onnx"
    assert main(["export", str(checkpoint), "--out", str(out), "--parity-threshold", "1e-12", *FAST]) == 1
    text = capsys.readouterr().out
    assert "parity vs PyTorch: FAIL" in text and "max |err|" in text and "mean |err|" in text
    assert not out.exists()


def test_missing_checkpoint_exits_2_naming_the_fix(tmp_path):
    result = _cli(str(tmp_path / "nope.safetensors"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Fix:" in result.stderr and "deblurrt train" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--format", "engine", "--shape", "1280by720"], "WIDTHxHEIGHT"),
    (["--format", "engine", "--shape", "720x1280"], "ambiguous"),
    (["--keep-top", "2", "--precision", "int8"], "--sensitivity"),
    (["--int8-budget", "0.3", "--precision", "fp16"], "--int8-budget needs --precision int8"),
    (["--int8-budget", "-1", "--precision", "int8"], "a cost >= 0 dB"),
    (["--int8-budget", "nan", "--precision", "int8"], "a cost >= 0 dB"),
    (["--keep-top", "-2", "--precision", "int8", "--sensitivity"], "--keep-top must be >= 0"),
    (["--sensitivity-eval", ".", "--precision", "int8"], "Fix: add --sensitivity or --int8-budget"),
    (["--dla", "0", "--precision", "fp16"], "--format engine"),
    (["--min-shape", "64x64"], "all of"),
    (["--out", "model.txt"], "a --format onnx artefact is named *.onnx, received '.txt'. Fix: --out model.onnx"),
    (["--precision", "int8", "--int8-keep", "firsst"], "unknown node group(s) ['firsst']"),
    (["--out", "model.trt"], "named *.onnx, received '.trt'"),
])
def test_bad_arguments_exit_2(checkpoint, capsys, args, message):
    assert main(["export", str(checkpoint), *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_engine_without_tensorrt_exits_2_before_any_work(checkpoint, tmp_path, capsys):
    assert main(["export", str(checkpoint), "--format", "engine", "--out", str(tmp_path / "m.engine")]) == 2
    err = capsys.readouterr().err
    assert "tensorrt" in err and "pip install 'deblurrt[trt-cu12]'" in err and "JetPack" in err
    assert not list(tmp_path.iterdir())


def test_help_lists_examples():
    result = subprocess.run([sys.executable, "-m", "deblurrt", "export", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    assert "--precision" in result.stdout and "examples:" in result.stdout and "--calib-method" in result.stdout


@pytest.mark.parametrize("fmt, name, accepted", [
    ("engine", "m.engine", True), ("engine", "m.plan", True), ("engine", "m.trt", True),
    ("engine", "m.onnx", False), ("onnx", "m.onnx", True), ("onnx", "m.engine", False),
])
def test_out_must_carry_a_suffix_the_runtime_reads_as_that_format(checkpoint, tmp_path, fmt, name, accepted):
    from deblurrt.export.pipeline import ExportRequest, check_outputs
    from deblurrt.outputs import OutputError
    from deblurrt.runtime.backends import backend_for_path

    request = ExportRequest(checkpoint=checkpoint, format=fmt, accuracy=False)
    if accepted:
        check_outputs(request, tmp_path / name, "m")
        assert backend_for_path(tmp_path / name) == ("tensorrt" if fmt == "engine" else "onnxruntime")
    else:
        with pytest.raises(OutputError, match=f"--format {fmt} artefact"):
            check_outputs(request, tmp_path / name, "m")
