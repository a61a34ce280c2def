"""Pre/post-processing at camera resolutions: BGR uint8 -> padded NCHW float and back, padding, tiling.

These run on every frame of ``deblurrt run`` next to the model; at 1080p they are a measurable share of a
nano model's frame budget.
"""

from __future__ import annotations

import numpy as np
import pytest

from deblurrt.runtime.prepost import FrameAdapter, batch_to_frames, frames_to_batch, tiled_infer

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}


def _frame(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", list(SIZES))
def test_pre_frames_to_batch(benchmark, size):
    """BGR uint8 frame -> RGB float32 NCHW, padded to a multiple of 16 (1080 -> 1088 rows)."""
    frame = _frame(*SIZES[size])
    benchmark.extra_info.update({"resolution": size, "multiple": 16, "dtype": "float32"})
    batch = benchmark(frames_to_batch, frame, 16)
    assert batch.shape[2] % 16 == 0 and batch.shape[3] % 16 == 0


@pytest.mark.parametrize("size", list(SIZES))
def test_pre_frames_to_batch_fp16(benchmark, size):
    """The same into float16 (FP16-input engines)."""
    frame = _frame(*SIZES[size])
    benchmark.extra_info.update({"resolution": size, "multiple": 16, "dtype": "float16"})
    batch = benchmark(frames_to_batch, frame, 16, dtype=np.float16)
    assert batch.dtype == np.float16


@pytest.mark.parametrize("size", list(SIZES))
def test_post_batch_to_frames(benchmark, size):
    """Padded NCHW float output -> cropped, clipped, rounded BGR uint8 frame."""
    height, width = SIZES[size]
    batch = frames_to_batch(_frame(height, width), 16)
    benchmark.extra_info.update({"resolution": size})
    frames = benchmark(batch_to_frames, batch, (height, width))
    assert frames[0].shape == (height, width, 3)


def test_padding_odd_size(benchmark):
    """Edge-replication padding of an awkward size (1080x1918 -> 1088x1920) on the way in."""
    frame = _frame(1080, 1918)
    benchmark.extra_info.update({"resolution": "1080x1918", "multiple": 16})
    batch = benchmark(frames_to_batch, frame, 16)
    assert batch.shape[2:] == (1088, 1920)


def test_tiling_1080p(benchmark):
    """Tiled inference bookkeeping at 1080p with 512x512 tiles, overlap 32 (identity model: blending only)."""
    batch = frames_to_batch(_frame(1080, 1920), 16)
    benchmark.extra_info.update({"resolution": "1080p", "tile": "512x512", "overlap": 32})
    out = benchmark(tiled_infer, lambda x: x, batch, (512, 512), 32)
    np.testing.assert_allclose(out, batch, atol=1e-5)


def test_adapter_round_trip_720p(benchmark):
    """FrameAdapter: prepare -> identity -> finish, what the pipeline's pre and post stages do per frame."""
    frame = _frame(720, 1280)
    adapter = FrameAdapter(16)
    benchmark.extra_info.update({"resolution": "720p"})
    out = benchmark(adapter, lambda x: x, frame)
    assert np.array_equal(out, frame)
