"""--int8-backend modelopt: refusals without ModelOpt or with options it cannot honour, and (where ModelOpt is
installed) an end-to-end export whose graph passes the TensorRT audit and stays close to FP32."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from blocked_imports import run_without

from deblurrt.cli import main
from deblurrt.errors import DeblurrtError
from deblurrt.export.modelopt_int8 import modelopt_calib_method

FAST = ["--calib-shape", "64x64", "--calib-count", "4", "--eval-count", "2", "--eval-shape", "64x96"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from deblurrt.train.checkpoint import save_model
    from deblurrt.train.models import create_model

    torch.manual_seed(0)
    return save_model(create_model("unet_tiny_prior"), tmp_path_factory.mktemp("ckpt") / "unet.safetensors")


def test_missing_modelopt_exits_2_naming_the_package(checkpoint, tmp_path):
    # modelopt is made unimportable in the child, so this holds whether or not it is installed here.
    result = run_without(f"""
        from deblurrt.cli import main
        raise SystemExit(main(["export", {str(checkpoint)!r}, "--precision", "int8", "--int8-backend", "modelopt",
                               "--out", {str(tmp_path / "m.onnx")!r}]))
    """, blocked=["modelopt"])
    assert result.returncode == 2, result.stderr + result.stdout
    assert "needs 'nvidia-modelopt', which is not installed" in result.stderr
    assert "pip install 'deblurrt[modelopt]'" in result.stderr and "blocked for this test" in result.stderr
    assert "parity" not in result.stdout  # refused before the FP32 export
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(("extra", "expected"), [
    (["--precision", "fp16"], "--precision is fp16. Fix: add --precision int8"),
    (["--precision", "int8", "--sensitivity"], "--sensitivity and --int8-budget rank layers with the ort backend"),
    (["--precision", "int8", "--int8-budget", "0.3"], "Fix: run them with --int8-backend ort"),
    (["--precision", "int8", "--calib-method", "percentile"], "cannot calibrate with 'percentile'"),
])
def test_options_modelopt_cannot_honour_are_refused(checkpoint, tmp_path, capsys, extra, expected):
    out = tmp_path / "m.onnx"
    assert main(["export", str(checkpoint), "--int8-backend", "modelopt", "--out", str(out), *extra]) == 2
    captured = capsys.readouterr()
    assert expected in captured.err and "parity" not in captured.out
    assert not out.exists()


def test_calibration_methods_map_to_modelopt_names():
    assert modelopt_calib_method("minmax") == "max"
    assert modelopt_calib_method("entropy") == "entropy"
    with pytest.raises(DeblurrtError, match=r"offers entropy and max only\. Fix: use --calib-method minmax or "
                                            r"entropy, or --int8-backend ort for percentile"):
        modelopt_calib_method("percentile")
    with pytest.raises(DeblurrtError, match="unknown calibration method 'magic'"):
        modelopt_calib_method("magic")


def test_importing_deblurrt_export_does_not_import_modelopt():
    code = ("import sys, deblurrt.cli, deblurrt.export.pipeline, deblurrt.export.modelopt_int8; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'modelopt'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_modelopt_export_end_to_end_passes_the_audit_and_stays_close_to_fp32(checkpoint, tmp_path):
    pytest.importorskip("modelopt.onnx.quantization")
    pytest.importorskip("onnxruntime")
    from deblurrt.export.int8 import qdq_summary
    from deblurrt.export.modelopt_int8 import quantized_nodes
    from deblurrt.export.nodes import sensitive_nodes
    from deblurrt.export.onnx_export import read_metadata
    from deblurrt.export.trt_audit import audit_model

    out = tmp_path / "mo.onnx"
    result = subprocess.run([sys.executable, "-m", "deblurrt", "export", str(checkpoint), "--precision", "int8",
                             "--int8-backend", "modelopt", "--calib-method", "entropy", "--out", str(out), *FAST],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "INT8 Q/DQ through ModelOpt" in result.stdout and "entropy calibration on 4 frames" in result.stdout
    assert "TensorRT readiness: OK" in result.stdout
    report = audit_model(out)
    assert report.ok and not report.warnings, report.format()
    summary = qdq_summary(out)
    assert summary["zero_point_types"] == ["INT8"] and summary["nonzero_zero_points"] == 0
    assert summary["weight_axes"] and all(channels > 1 for _, channels in summary["weight_axes"])
    import onnx

    proto = onnx.load(str(out))
    quantized = quantized_nodes(proto, ("Conv", "ConvTranspose"))
    groups = sensitive_nodes(proto.graph)
    assert quantized and not set(quantized) & set(groups["first"] + groups["last"])
    meta = read_metadata(out)
    assert meta["deblurrt.precision"] == "int8" and meta["deblurrt.int8.backend"] == "modelopt"
    rows = {row["precision"]: row for row in json.loads((tmp_path / "mo.onnx.accuracy.json").read_text())["rows"]}
    assert rows["int8"]["psnr_vs_fp32"] > 35
