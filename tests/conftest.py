"""Shared fixtures: deterministic seeds and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _deterministic():
    """Each test starts from the same RNG state and uses at most 2 threads (the CI machine has 2 cores).
    Without torch installed, torch-free tests still run."""
    try:
        import torch
    except ImportError:
        yield
        return
    torch.manual_seed(0)
    torch.set_num_threads(2)
    yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> dict:
    """One tiny exported model for all runtime tests: ``onnx`` (pad multiple 32, traced at 64x96), the
    ``ckpt`` it came from, and the PyTorch ``model``. Exported once per session; tests must not modify it."""
    pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    from deblurrt.export.onnx_export import export_onnx
    from deblurrt.train.checkpoint import save_model
    from deblurrt.train.models import create_model

    folder = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    model = create_model("unet_tiny_prior").eval()
    return {"onnx": export_onnx(model, folder / "tiny.onnx", sample_shape=(64, 96)),
            "ckpt": save_model(model, folder / "tiny.safetensors"), "model": model}


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` when present (developer machines); tests that need it skip otherwise."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
