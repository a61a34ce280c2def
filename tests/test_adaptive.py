"""The adaptive runtime (issue 14): --target-fps choice logic and its cache, reduced-resolution processing by
residual upscaling, blur-aware pass-through, the flicker measure and the temporal blend. No timings are
asserted: calibration is driven by fake measurements."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from deblurrt.errors import DeblurrtError
from deblurrt.runtime.adaptive import (
    CalibrationCache,
    Candidate,
    Measurement,
    ModelQuality,
    ScaledAdapter,
    candidates_for,
    choose,
    load_validation_table,
    processing_size,
)
from deblurrt.runtime.backends import Backend, InputSpec, ModelInfo
from deblurrt.runtime.blurscore import (
    DEFAULT_THRESHOLD,
    BlurScoreConfig,
    BlurScorer,
    PassThroughGate,
    reblur_score,
)
from deblurrt.runtime.flicker import FlickerMeter, TemporalBlend, warping_error
from deblurrt.runtime.pipeline import Pipeline, PipelineOptions
from deblurrt.runtime.prepost import FrameAdapter
from deblurrt.runtime.sinks import NullSink
from deblurrt.runtime.sources import open_source
from deblurrt.runtime.synthetic import parse_synthetic_uri


class Shift(Backend):
    """A model stand-in: returns its input plus ``offset`` (0 = identity), counting calls."""

    name = "shift"

    def __init__(self, offset: float = 0.0, multiple: int = 16):
        super().__init__("shift.onnx")
        self.offset, self.calls = np.float32(offset), 0
        self.info = ModelInfo(name="shift", pad_multiple=multiple, input_name="blurry", output_name="sharp")
        self.input_spec = InputSpec("blurry", np.dtype(np.float32), (None, 3, None, None))

    def _infer(self, batch):
        self.calls += 1
        return batch + self.offset if self.offset else batch.copy()


class Collect(NullSink):
    def __init__(self):
        super().__init__("collect")
        self.images = []

    def _write(self, image, name):
        self.images.append(image.copy())


def fake_measure(fps_by_label, log):
    def measure(candidate):
        log.append(candidate.label)
        return Measurement(fps_by_label[candidate.label], 1000 / fps_by_label[candidate.label],
                           1000 / fps_by_label[candidate.label], 3, (64, 64))
    return measure


CANDIDATES = [Candidate("big", "big.onnx", 1.0, 3.0), Candidate("big", "big.onnx", 0.5, 2.0),
              Candidate("small", "small.onnx", 1.0, 1.5), Candidate("small", "small.onnx", 0.5, 0.8)]
FPS = {"big@1": 10.0, "big@0.5": 25.0, "small@1": 35.0, "small@0.5": 80.0}


# ----------------------------------------------------------------------------------------- choice logic

def test_choice_is_the_best_candidate_that_meets_the_target_and_stops_measuring_there():
    log = []
    choice = choose(CANDIDATES, fake_measure(FPS, log), 30.0)
    assert choice.met and choice.candidate.label == "small@1"
    assert log == ["big@1", "big@0.5", "small@1"]  # the last candidate was never measured
    assert choice.stats()["model"] == "small" and choice.stats()["scale"] == 1.0
    assert choice.stats()["measured_fps"] == 35.0 and choice.stats()["precision"] == "fp32"
    assert choose(CANDIDATES, fake_measure(FPS, []), 20.0).candidate.label == "big@0.5"
    assert choose(CANDIDATES, fake_measure(FPS, []), 5.0).candidate.label == "big@1"


def test_choice_falls_back_to_the_fastest_and_says_so():
    log = []
    choice = choose(CANDIDATES, fake_measure(FPS, log), 100.0)
    assert not choice.met and choice.candidate.label == "small@0.5"
    assert len(log) == 4
    assert "no candidate reaches it" in choice.message and "80.0 fps" in choice.message


def test_exhaustive_choice_measures_every_candidate_for_the_table():
    from deblurrt.runtime.adaptive import format_table

    log = []
    choice = choose(CANDIDATES, fake_measure(FPS, log), 30.0, exhaustive=True)
    assert choice.candidate.label == "small@1" and len(log) == 4
    table = format_table(choice, CANDIDATES)
    assert "small@1 **chosen**" in table and table.count("| yes |") == 2


def test_candidates_are_ranked_by_validation_gain_per_scale():
    table = {"a": ModelQuality("a", {1.0: 1.0, 0.5: 0.4}), "b": ModelQuality("b", {1.0: 2.0, 0.5: 0.9})}
    ranked = candidates_for(["w/a.onnx", "w/b.onnx", "w/c.onnx"], table, (1.0, 0.5, 0.25))
    labels = [c.label for c in ranked]
    assert labels == ["b@1", "a@1", "b@0.5", "b@0.25", "a@0.5", "a@0.25",
                      "c@1", "c@0.5", "c@0.25"]  # c is not in the table: last, largest scale first
    estimated = next(c for c in ranked if c.label == "b@0.25")
    assert estimated.estimated and estimated.quality_db == pytest.approx(0.5)


def test_gains_within_one_step_prefer_the_larger_scale():
    table = {"s": ModelQuality("s", {1.0: 0.365, 0.75: 0.375, 0.5: 0.348}),
             "n": ModelQuality("n", {1.0: 0.222, 0.75: 0.255, 0.5: 0.258})}
    ranked = [c.label for c in candidates_for(["s.onnx", "n.onnx"], table, (1.0, 0.75, 0.5))]
    assert ranked == ["s@1", "s@0.75", "s@0.5", "n@0.75", "n@0.5", "n@1"]


def test_validation_table_format_and_errors(tmp_path):
    path = tmp_path / "validation.json"
    assert load_validation_table(path) == {}
    path.write_text(json.dumps({"version": 1, "models": {"m": {"gain_db": {"1": 1.2, "0.5": 0.7},
                                                                "sha256": "ab"}}}))
    table = load_validation_table(path)
    assert table["m"].gain_db == {1.0: 1.2, 0.5: 0.7} and table["m"].sha256 == "ab"
    path.write_text(json.dumps({"version": 1, "models": {"m": {"gain": 1}}}))
    with pytest.raises(DeblurrtError, match="gain_db.*Fix"):
        load_validation_table(path)
    path.write_text("[1, 2]")
    with pytest.raises(DeblurrtError, match="version-1"):
        load_validation_table(path)


def test_shipped_validation_table_covers_the_shipped_models():
    from deblurrt.commands._adaptive import weights_dir
    from deblurrt.commands.run import shipped_models

    table = load_validation_table(weights_dir() / "validation.json")
    for name in shipped_models():
        assert name in table and 1.0 in table[name].gain_db, f"weights/validation.json lacks {name}"


# ---------------------------------------------------------------------------------------------- cache

def test_cache_is_keyed_by_machine_backend_model_size_and_scale(tmp_path):
    path = tmp_path / "cache.json"
    cache = CalibrationCache(path, machine={"host": "a"})
    backend = {"backend": "onnxruntime", "options": {"threads": 2}}
    key = cache.key(backend, "sha1", (640, 360), 0.5)
    cache.put(key, Measurement(31.0, 32.2, 32.0, 9, (320, 180)))
    again = CalibrationCache(path, machine={"host": "a"})  # read back from the file
    hit = again.get(again.key(backend, "sha1", (640, 360), 0.5))
    assert hit is not None and hit.fps == 31.0 and hit.cached and hit.processing_size == (320, 180)
    other_backend = {"backend": "onnxruntime", "options": {"threads": 1}}
    misses = [again.key(backend, "sha2", (640, 360), 0.5), again.key(backend, "sha1", (1280, 720), 0.5),
              again.key(backend, "sha1", (640, 360), 0.75), again.key(other_backend, "sha1", (640, 360), 0.5),
              CalibrationCache(path, machine={"host": "b"}).key(backend, "sha1", (640, 360), 0.5)]
    assert len(set(misses)) == 5 and key not in misses
    assert all(again.get(k) is None for k in misses)


def test_a_corrupt_cache_is_ignored(tmp_path):
    path = tmp_path / "cache.json"
    path.write_text("{not json")
    cache = CalibrationCache(path, machine={})
    key = cache.key({}, "s", (1, 1), 1.0)
    assert cache.get(key) is None
    cache.put(key, Measurement(1.0, 1000.0, 1000.0, 3, (1, 1)))
    assert CalibrationCache(path, machine={}).get(key) is not None


def test_second_calibration_is_served_from_the_cache(tmp_path, monkeypatch):
    import deblurrt.runtime.adaptive as adaptive
    import deblurrt.runtime.backends as backends
    from deblurrt.commands._adaptive import calibrate

    monkeypatch.setenv("DEBLURRT_CACHE_DIR", str(tmp_path))
    models = []
    for name in ("m1", "m2"):
        (tmp_path / f"{name}.onnx").write_bytes(name.encode())
        models.append(str(tmp_path / f"{name}.onnx"))
    measured = []

    def measure(backend, scale, frame, seconds=0.5):
        measured.append((backend.path, scale))
        fps = {1.0: 10.0, 0.5: 40.0}[scale] * (2 if backend.path == models[1] else 1)
        return Measurement(fps, 1000 / fps, 1000 / fps, 3, processing_size(64, 48, scale))

    class Opened:
        def __init__(self, path, *args, **kwargs):
            self.path = path

        def close(self):
            pass

    monkeypatch.setattr(adaptive, "measure_candidate", measure)
    monkeypatch.setattr(backends, "open_backend", Opened)
    frame = np.zeros((48, 64, 3), np.uint8)
    first, _ = calibrate(models, frame, 30.0, backend=None, options={"threads": 2}, scales=[1.0, 0.5],
                         recalibrate=False, status=None)
    count = len(measured)
    assert first.met and count >= 1
    second, _ = calibrate(models, frame, 30.0, backend=None, options={"threads": 2}, scales=[1.0, 0.5],
                          recalibrate=False, status=None)
    assert len(measured) == count, "the second start measured again"
    assert second.candidate == first.candidate and second.measurement.cached
    calibrate(models, frame, 30.0, backend=None, options={"threads": 1}, scales=[1.0, 0.5], recalibrate=False,
              status=None)
    assert len(measured) > count, "another backend setup must not reuse the measurements"


# --------------------------------------------------------------------------------- residual upscaling

@pytest.mark.parametrize("scale", [1.0, 0.75, 0.5, 0.25])
def test_residual_upscaling_is_exact_on_an_identity_model(scale):
    frame = np.random.default_rng(1).integers(0, 256, (75, 131, 3), dtype=np.uint8)  # fine detail everywhere
    backend = Shift()
    adapter = ScaledAdapter(FrameAdapter.for_backend(backend), scale)
    prepared = adapter.prepare(frame)
    assert prepared.batch.shape[2:] == (-(-processing_size(131, 75, scale)[1] // 16) * 16,
                                        -(-processing_size(131, 75, scale)[0] // 16) * 16)
    np.testing.assert_array_equal(adapter(backend.infer, frame), frame)


def test_residual_upscaling_adds_the_model_correction_to_the_full_frame():
    frame = np.random.default_rng(2).integers(0, 240, (64, 96, 3), dtype=np.uint8)
    backend = Shift(offset=10 / 255)  # a constant residual of 10 levels
    out = ScaledAdapter(FrameAdapter.for_backend(backend), 0.5)(backend.infer, frame)
    np.testing.assert_array_equal(out, frame + 10)  # the detail is the input's, not an upscaled output's


def test_pipeline_scale_option_processes_smaller_and_keeps_the_frame(tmp_path):
    backend, sink = Shift(), Collect()
    source = open_source("synthetic://?size=96x64&frames=3")
    stats = Pipeline(source, backend, sink, PipelineOptions(status=None, scale=0.5)).run()
    expected = [source.camera.render(i)[0] for i in range(3)]
    for got, want in zip(sink.images, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert stats["scale"] == 0.5 and stats["target_fps"] is None and stats["chosen"] is None


# -------------------------------------------------------------------------------------- pass-through

def test_synthetic_bursts_schedule_and_sharp_frames():
    options = parse_synthetic_uri("synthetic://?size=64x48&bursts=0.25&burst=4")
    labels = [options.is_blurry(i) for i in range(32)]
    assert labels[:12] == [False] * 12 and labels[12:16] == [True] * 4 and sum(labels) == 8
    assert not any(parse_synthetic_uri("synthetic://?bursts=0").is_blurry(i) for i in range(50))
    assert all(parse_synthetic_uri("synthetic://").is_blurry(i) for i in range(50))
    with pytest.raises(DeblurrtError, match="bursts"):
        parse_synthetic_uri("synthetic://?bursts=1.5")
    with open_source("synthetic://?size=96x64&frames=16&bursts=0.25&burst=4") as source:
        frames = list(source)
    for frame in frames:
        error = np.abs(frame.image.astype(int) - frame.truth.astype(int)).mean()
        assert (error > 1.0) == source.options.is_blurry(frame.index)


def test_blur_scores_rise_with_blur():
    sharp = np.random.default_rng(3).integers(0, 256, (120, 160), dtype=np.uint8)
    sharp = cv2.GaussianBlur(sharp, (0, 0), 0.7)  # natural-ish: not pure noise
    kernel = np.full((1, 15), 1 / 15, np.float32)
    blurry = cv2.filter2D(sharp, -1, kernel)  # horizontal motion blur
    as_bgr = [cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) for image in (sharp, blurry)]
    assert reblur_score(sharp.astype(np.float32)) < reblur_score(blurry.astype(np.float32))
    for method in ("detail", "reblur", "gradient"):
        scorer = BlurScorer(BlurScoreConfig(method=method))
        assert scorer(as_bgr[0]) < scorer(as_bgr[1]), method
    flat = np.full((20, 20, 3), 7, np.uint8)  # nothing sharp in a flat frame
    assert reblur_score(flat[..., 0].astype(np.float32)) == 1.0
    assert BlurScorer()(flat) == float("inf")


def test_running_reference_levels_are_relative_to_the_recent_minimum():
    scorer = BlurScorer(BlurScoreConfig(window=3))
    scores = iter([1.0, 1.2, 0.9, 1.5, 1.6, 1.7, 1.0])
    scorer.__class__ = type("Scripted", (BlurScorer,), {"__call__": lambda self, _frame: next(scores)})
    levels = [round(scorer.level(None)[1], 3) for _ in range(7)]
    assert levels == [0.0, 0.2, 0.0, 0.6, 0.7, 0.2, 0.0]  # the burst at 1.5-1.7 becomes its own reference


def test_gate_fades_out_after_a_blurry_stretch():
    gate = PassThroughGate(threshold=0.5, blend_frames=2)
    levels = iter([0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1])
    gate.scorer.level = lambda _frame: (1.0, next(levels))  # a scripted level sequence
    decisions = [gate.decide(None) for _ in range(7)]
    assert [round(d.alpha, 3) for d in decisions] == [0.0, 1.0, 1.0, 0.667, 0.333, 0.0, 0.0]
    assert [d.run_model for d in decisions] == [False, True, True, True, True, False, False]
    assert gate.skipped == 3 and gate.frames == 7


@pytest.mark.parametrize("blend_frames", [0, 2])
def test_skip_sharp_passes_the_known_sharp_frames_through(blend_frames):
    # live=0: every frame is delivered, so a busy machine (which a live camera would drop frames for) cannot fail it
    uri = "synthetic://?size=160x120&frames=48&bursts=0.25&burst=4&severity=severe&live=0"
    source, backend, sink = open_source(uri), Shift(offset=3 / 255), Collect()
    stats = Pipeline(source, backend, sink, PipelineOptions(status=None, skip_threshold=DEFAULT_THRESHOLD,
                                                            skip_blend=blend_frames)).run()
    blurry = [source.options.is_blurry(i) for i in range(48)]
    faded = [not b and any(blurry[max(0, i - blend_frames):i]) for i, b in enumerate(blurry)]
    expected_skipped = sum(not b and not f for b, f in zip(blurry, faded, strict=True))
    assert stats["skipped_sharp"] == expected_skipped and backend.calls == 48 - expected_skipped
    assert stats["skip_sharp"]["scored"] == 48
    for index, (image, is_blurry) in enumerate(zip(sink.images, blurry, strict=True)):
        frame = source.camera.render(index)[0]
        if is_blurry:  # deblurred at full strength: the model's +3 levels
            np.testing.assert_array_equal(image, np.clip(frame.astype(int) + 3, 0, 255))
        elif not faded[index]:
            np.testing.assert_array_equal(image, frame)  # passed straight through


# ------------------------------------------------------------------------------------------- flicker

def _scene(height=96, width=128, seed=0):
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 2.0)
    return cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)


def test_warping_error_is_zero_on_a_static_stream():
    frame = _scene()
    meter = FlickerMeter()
    for _ in range(4):
        meter.add(frame, frame.copy())
    result = meter.result()
    assert result["input"] == 0.0 and result["output"] == 0.0 and result["pairs"] == 3
    assert result["valid"] == 1.0


def test_warping_error_sees_flicker_that_motion_does_not_explain():
    scene = _scene(140, 180)
    meter = FlickerMeter()
    for t in range(6):
        frame = np.ascontiguousarray(scene[10 + t:106 + t, 10 + 2 * t:138 + 2 * t])  # a pan: real motion
        flicker = np.clip(frame.astype(int) + (6 if t % 2 else -6), 0, 255).astype(np.uint8)
        meter.add(frame, flicker)
    result = meter.result()
    assert result["input"] < 2.0, "the flow should explain the pan"
    assert result["output"] > result["input"] + 8.0 and result["ratio"] > 3


def test_warping_error_masks_pixels_whose_flow_is_inconsistent():
    a, b = _scene(seed=1), _scene(seed=2)  # a cut: nothing corresponds
    pair = warping_error(a, b, a, b)
    assert pair["valid"] < 0.9


def test_temporal_blend_lowers_flicker_of_a_flickering_residual():
    frame = _scene()
    blend = TemporalBlend(strength=0.5)
    raw, smoothed = FlickerMeter(), FlickerMeter()
    for t in range(8):
        output = np.clip(frame.astype(int) + (4 if t % 2 else -4), 0, 255).astype(np.uint8)
        raw.add(frame, output)
        smoothed.add(frame, blend(frame, output))
    assert smoothed.result()["output"] < 0.6 * raw.result()["output"]
    identity = TemporalBlend(strength=0.5)
    np.testing.assert_array_equal(identity(frame, frame), frame)
    np.testing.assert_array_equal(identity(frame, frame), frame)


def test_pipeline_reports_flicker_when_asked(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    frame = _scene()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame)
    stats = Pipeline(open_source(str(folder)), Shift(), NullSink("none"),
                     PipelineOptions(status=None, flicker=True)).run()
    assert stats["flicker"]["input"] == 0.0 and stats["flicker"]["output"] == 0.0
    assert stats["flicker"]["pairs"] == 3 and stats["skipped_sharp"] == 0
    stats = Pipeline(open_source(str(folder)), Shift(), NullSink("none"), PipelineOptions(status=None)).run()
    assert stats["flicker"] is None


def test_eval_of_a_video_reports_flicker(tmp_path):
    from deblurrt.runtime.video_eval import evaluate_video, is_video_file

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 96))
    scene = _scene(140, 180)
    for t in range(5):
        writer.write(np.ascontiguousarray(scene[10 + t:106 + t, 10 + t:138 + t]))
    writer.release()
    assert is_video_file(path) and not is_video_file(tmp_path)
    report = evaluate_video(Shift(), path)
    assert report["n"] == 5 and report["layout"] == "video" and report["reference"] == "none"
    flicker = report["flicker"]
    assert flicker["pairs"] == 4 and flicker["output"] == pytest.approx(flicker["input"])


# ------------------------------------------------------------------------------------------------- CLI

def _clip(path, frames=12, size=(96, 64)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    scene = _scene(size[1] + 40, size[0] + 40)
    for t in range(frames):
        writer.write(np.ascontiguousarray(scene[t:t + size[1], 2 * t:2 * t + size[0]]))
    writer.release()
    return path


def _cli(*args, env=None):
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "DEBLURRT_DEFAULT_MODEL"}
    return subprocess.run([sys.executable, "-m", "deblurrt", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**environment, **(env or {})})


def test_run_stats_carry_the_adaptive_keys(tiny_model, tmp_path):
    clip, stats_path = _clip(tmp_path / "clip.avi"), tmp_path / "stats.json"
    env = {"DEBLURRT_CACHE_DIR": str(tmp_path / "cache")}
    result = _cli("run", clip, "none", "--model", tiny_model["onnx"], "--threads", 1, "--skip-sharp",
                  "--stats-json", stats_path, env=env)
    assert result.returncode == 0, result.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["target_fps"] is None and stats["chosen"] is None
    assert isinstance(stats["skipped_sharp"], int) and stats["skip_sharp"]["scored"] == 12
    assert set(stats["flicker"]) >= {"input", "output"} and stats["flicker"]["pairs"] == 11
    synthetic = "synthetic://?size=96x64&frames=4"
    first = _cli("run", synthetic, "none", "--model", tiny_model["onnx"], "--threads", 1, "--target-fps", 1,
                 "--scales", "1,0.5", "--stats-json", stats_path, "--overwrite", env=env)
    assert first.returncode == 0, first.stderr
    assert "calibration [1/2]" in first.stderr and "target 1 fps" in first.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["target_fps"] == 1.0 and stats["flicker"] is None and stats["skipped_sharp"] == 0
    assert {"model", "precision", "scale", "measured_fps"} <= set(stats["chosen"])
    assert stats["chosen"]["model"] == "tiny" and stats["scale"] == stats["chosen"]["scale"]
    second = _cli("run", synthetic, "none", "--model", tiny_model["onnx"], "--threads", 1, "--target-fps", 1,
                  "--scales", "1,0.5", env=env)
    assert second.returncode == 0 and "(cached)" in second.stderr and "ms/frame" not in second.stderr
    assert "target 1 fps" in second.stderr
    table = _cli("bench", "--target-fps", 1, "--model", tiny_model["onnx"], "--threads", 1, "--size", "96x64",
                 "--scales", "1,0.5", env=env)
    assert table.returncode == 0, table.stderr
    assert "tiny@1" in table.stdout and "tiny@0.5" in table.stdout and "**chosen**" in table.stdout
    assert "(cached)" in table.stderr  # the run's measurement of 96x64 served the table


def test_eval_of_a_video_file_from_the_cli(tiny_model, tmp_path):
    clip, report_path = _clip(tmp_path / "clip.avi"), tmp_path / "report.json"
    result = _cli("eval", tiny_model["onnx"], "--data", clip, "--threads", 1, "--json", report_path, "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["layout"] == "video" and report["n"] == 12 and report["flicker"]["pairs"] == 11
    assert "flicker (warping error" in result.stdout
