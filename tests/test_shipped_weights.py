"""The trained models shipped in weights/: complete, named by registry name, small, and the ONNX computes what
the safetensors checkpoint computes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from deblurrt.train.models.registry import list_models

pytest.importorskip("onnxruntime")

from deblurrt.export.onnx_export import ort_session, read_metadata  # noqa: E402
from deblurrt.synthesis import BlurConfig, synthesize_pair  # noqa: E402
from deblurrt.train.checkpoint import load_model  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = sorted(path.stem for path in WEIGHTS.glob("*.onnx"))


def test_the_nano_and_small_prior_defaults_ship():
    assert {"unet_nano_prior", "unet_small_prior"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_is_complete_and_named_by_its_registry_name(name):
    onnx_path, checkpoint, config = (WEIGHTS / f"{name}{suffix}" for suffix in (".onnx", ".safetensors", ".yaml"))
    assert checkpoint.is_file() and config.is_file(), f"{name}: ship .onnx, .safetensors and .yaml together"
    assert name in list_models()
    metadata = read_metadata(onnx_path)
    assert metadata["deblurrt.model"] == name and metadata["deblurrt.precision"] == "fp32"
    assert json.loads(metadata["deblurrt.config"])["name"] == name
    assert yaml.safe_load(config.read_text())["model"]["name"] == name
    for path in (onnx_path, checkpoint):
        assert path.stat().st_size < 25 * 2**20, f"{path.name} is over the 25 MB budget"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_onnx_matches_its_checkpoint(name):
    model = load_model(WEIGHTS / f"{name}.safetensors").eval()
    sharp = np.random.default_rng(3).random((96, 128, 3), dtype=np.float32)
    blurry, _ = synthesize_pair(sharp, 3, BlurConfig.preset("moderate"))
    batch = np.ascontiguousarray(blurry.transpose(2, 0, 1)[None])
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    session = ort_session(WEIGHTS / f"{name}.onnx")
    received = session.run(None, {session.get_inputs()[0].name: batch})[0]
    assert received.shape == expected.shape
    assert np.abs(received - expected).max() < 1e-4, "the shipped ONNX and safetensors hold different weights"
