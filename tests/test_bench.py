"""``deblurrt bench``: the CLI's reports (JSON keys, Markdown, plots), end-to-end ratios, quality chart,
the environment block, unknown names, percentiles, TensorRT skipping cleanly, and the pytest-benchmark
suites (``make bench``) passing a minimal run in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deblurrt.bench.stats import latency_summary, percentile, percentiles
from deblurrt.cli import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One export cache for every test here (and the pytest-benchmark subprocess)."""
    return tmp_path_factory.mktemp("bench-cache")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, cache_dir):
    """One CLI run covering model-only (FP32 + INT8), e2e on synthetic://, --quality, and every report."""
    folder = tmp_path_factory.mktemp("bench")
    quality = []
    for name, psnr, ssim in (("unet_tiny", 27.5, 0.81), ("unet_tiny_prior", 28.25, 0.84)):
        path = folder / f"eval_{name}.json"
        path.write_text(json.dumps({"model": name, "input": {"psnr": 25.0, "ssim": 0.7},
                                    "output": {"psnr": psnr, "ssim": ssim}}))
        quality.append(str(path))
    paths = {"json": folder / "out.json", "md": folder / "out.md", "plot": folder / "lat.png"}
    code = main(["bench", "--model", "unet_tiny", "unet_tiny_prior", "--precision", "fp32", "int8",
                 "--size", "96x64", "--iters", "5", "--warmup", "1", "--threads", "2",
                 "--e2e", "synthetic://?frames=6&severity=mild", "--e2e-frames", "6",
                 "--quality", *quality, "--peak-seconds", "0.05", "--cache-dir", str(cache_dir), "--quiet",
                 "--json", str(paths["json"]), "--md", str(paths["md"]), "--plot", str(paths["plot"])])
    assert code == 0
    return json.loads(paths["json"].read_text()), paths


def test_json_has_required_keys(bench_run):
    report, _ = bench_run
    assert {"environment", "results"} <= set(report)
    assert len(report["results"]) == 4  # 2 models x 2 precisions
    for row in report["results"]:
        for key in ("model", "backend", "precision", "height", "width", "latency_ms", "fps", "gmacs"):
            assert key in row, key
        assert set(row["latency_ms"]) == {"min", "mean", "p50", "p90", "p99", "max"}
        latency = row["latency_ms"]
        assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
        assert row["iterations"] >= 5 and row["height"] == 64 and row["width"] == 96
        assert row["backend"] == "onnxruntime" and row["gmacs"] > 0
        assert row["fps"] == pytest.approx(1000 / latency["mean"], rel=1e-2)
        assert row["gmac_per_s"] > 0 and row["peak_fraction"] > 0
        assert "random" in row["weights"]
    assert [r["precision"] for r in report["results"]] == ["fp32", "int8", "fp32", "int8"]
    assert report["results"][0]["relative_to_first"] == 1.0
    assert all(r["relative_to_first"] > 0 for r in report["results"])
    assert report["peak"]["numpy_gemm"]["gmac_per_s"] > 0 and report["peak"]["ort_conv3x3"]["gmac_per_s"] > 0


def test_markdown_and_plots(bench_run):
    _, paths = bench_run
    text = paths["md"].read_text()
    assert "| model | backend | precision | size | p50 ms |" in text
    assert "| unet_tiny_prior | ort | int8 | 96x64 |" in text
    assert "PSNR dB" in text and "28.25" in text  # quality merged into the table
    assert "random weights" in text
    assert paths["plot"].read_bytes()[:8] == PNG_MAGIC
    quality_png = paths["plot"].with_name("lat.quality.png")
    assert quality_png.read_bytes()[:8] == PNG_MAGIC and quality_png.stat().st_size > 5000


def test_e2e_stage_latencies_and_ratio(bench_run):
    report, paths = bench_run
    assert len(report["e2e"]) == 4
    for row in report["e2e"]:
        assert row["frames"] == 6 and row["dropped"] == 0
        assert (row["height"], row["width"]) == (64, 96)  # synthetic:// ran at the benchmarked size
        assert "size=96x64" in row["source"]
        for stage in ("capture", "pre", "infer", "post", "write", "end_to_end"):
            assert row["stage_latency_ms"][stage]["p50"] is not None
        assert row["fps"] > 0 and row["fps_ratio"] > 0 and row["latency_ratio"] > 0
        assert row["fps_ratio"] == pytest.approx(row["fps"] / row["model_only_fps"], rel=1e-3)
    assert "## End to end" in paths["md"].read_text()


def test_environment_block(bench_run):
    environment = bench_run[0]["environment"]
    assert environment["cpu"] and environment["cores"] >= 1 and environment["cores_usable"] >= 1
    versions = environment["versions"]
    assert versions["deblurrt"] and versions["numpy"] and versions["onnxruntime"]
    assert environment["threads"]["inference_threads"] == 2
    assert environment["date"][:2] == "20"
    assert "ok" in environment["gpu"] and "ok" in environment["jetson"]


def test_unknown_model_exits_2_with_closest_names(capsys):
    assert main(["bench", "--model", "unet_nan", "--iters", "1"]) == 2
    error = capsys.readouterr().err
    assert "unknown model 'unet_nan'" in error and "unet_nano" in error


def test_missing_model_file_exits_2(capsys, tmp_path):
    assert main(["bench", "--model", str(tmp_path / "nope.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_tensorrt_skips_with_reason(capsys, cache_dir):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed: the skip path is not exercised here")
    code = main(["bench", "--model", "unet_tiny", "--backend", "trt", "--iters", "1", "--no-peak",
                 "--cache-dir", str(cache_dir), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert "Skipped:" in captured.out and "TensorRT" in captured.out


def test_percentiles_on_a_known_list():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 0) == 1 and percentile(values, 100) == 100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 90) == pytest.approx(90.1)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentiles([5.0, 1.0, 3.0]) == {"p50": 3.0, "p90": pytest.approx(4.6), "p99": pytest.approx(4.96)}
    summary = latency_summary([4.0, 1.0, 2.0, 3.0])
    assert summary == {"min": 1.0, "mean": 2.5, "p50": 2.5, "p90": 3.7, "p99": 3.97, "max": 4.0}
    with pytest.raises(ValueError):
        percentile([], 50)


def test_round_plan_and_synthetic_targets():
    from deblurrt.bench.harness import Settings, e2e_targets, round_plan

    assert round_plan(Settings(iters=7, seconds=None, rounds=5)) == (5, 2, None)
    assert round_plan(Settings(iters=2, seconds=None, rounds=5)) == (2, 1, None)
    assert round_plan(Settings(seconds=2.0, rounds=4)) == (4, None, 0.5)
    targets = e2e_targets("synthetic://?frames=3", [(360, 640), (720, 1280)])
    # unpaced (live=0) unless the URI asks for a paced camera: end to end measures throughput
    assert targets == [("synthetic://?frames=3&live=0&size=640x360", (360, 640)),
                       ("synthetic://?frames=3&live=0&size=1280x720", (720, 1280))]
    assert e2e_targets("synthetic://?size=320x180&live=1", [(360, 640)]) == [
        ("synthetic://?size=320x180&live=1", (180, 320))]


def test_pytest_benchmark_suites_smoke(tmp_path, cache_dir):
    """``make bench`` in miniature: every suite runs (one round each), saves, and records the environment."""
    storage = tmp_path / "storage"
    env = {**os.environ, "DEBLURRT_BENCH_CACHE": str(cache_dir)}
    # the timeout is generous: on a loaded machine the suites are slow, not wrong
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "bench/suites", "-q", "-p", "no:cacheprovider",
         "--benchmark-min-rounds=1", "--benchmark-max-time=0.01", "--benchmark-warmup=off",
         f"--benchmark-storage=file://{storage}", "--benchmark-autosave"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    saved = list(storage.rglob("*.json"))
    assert len(saved) == 1
    data = json.loads(saved[0].read_text())
    assert data["machine_info"]["deblurrt"]["cpu"]
    names = {b["name"] for b in data["benchmarks"]}
    assert any(n.startswith("test_ort_inference[unet_tiny") for n in names)
    assert any(n.startswith("test_ort_inference[unet_nano") for n in names)
    assert "test_pipeline_synthetic" in names and any("1080p" in n for n in names)
    assert all(b["extra_info"].get("threads") for b in data["benchmarks"])
