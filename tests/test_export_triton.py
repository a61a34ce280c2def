"""Triton model repository layout and config.pbtxt content, parsed back on CPU."""

from __future__ import annotations

import re

import pytest

from deblurrt.errors import DeblurrtError
from deblurrt.export.triton import triton_config, write_triton_repo


def parse_pbtxt(text: str) -> dict:
    """A tiny protobuf-text reader for the shapes config.pbtxt uses: scalars, lists, nested blocks.

    Repeated blocks (``parameters { }``) and ``[ {..}, {..} ]`` lists become lists of dicts.
    """
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]|[^\s\[\]{}:,"]+', text)
    position = 0

    def value():
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "{":
            return block("}")
        if token == "[":
            items = []
            while tokens[position] != "]":
                if tokens[position] == ",":
                    position += 1
                    continue
                items.append(value())
            position += 1
            return items
        if token.startswith('"'):
            return bytes(token[1:-1], "utf-8").decode("unicode_escape")
        return int(token) if re.fullmatch(r"-?\d+", token) else token

    def block(end):
        nonlocal position
        result: dict = {}
        while position < len(tokens) and tokens[position] != end:
            key = tokens[position]
            position += 1
            if tokens[position] == ":":
                position += 1
            item = value()
            if key in result:
                result[key] = result[key] if isinstance(result[key], list) and key == "parameters" else [result[key]]
                result[key].append(item)
            else:
                result[key] = [item] if key == "parameters" else item
        position += 1
        return result

    return block(None)


def test_config_has_names_dtypes_dynamic_dims_and_batching():
    text = triton_config("deblur", "onnxruntime", "blurry", "sharp", "float32", max_batch_size=8,
                         metadata={"deblurrt.pad_multiple": "32", "deblurrt.config": "{}", "torch.version": "x"})
    config = parse_pbtxt(text)
    assert config["name"] == "deblur" and config["platform"] == "onnxruntime_onnx"
    assert config["max_batch_size"] == 8
    (inp,) = config["input"]
    (out,) = config["output"]
    assert inp == {"name": "blurry", "data_type": "TYPE_FP32", "dims": [3, -1, -1]}
    assert out == {"name": "sharp", "data_type": "TYPE_FP32", "dims": [3, -1, -1]}
    assert config["dynamic_batching"]["preferred_batch_size"] == [1, 2, 4, 8]
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] > 0
    assert config["instance_group"][0]["kind"] == "KIND_GPU"
    parameters = {p["key"]: p["value"]["string_value"] for p in config["parameters"]}
    assert parameters == {"deblurrt.pad_multiple": "32"}


def test_fp16_plan_config():
    config = parse_pbtxt(triton_config("m", "tensorrt", "blurry", "sharp", "float16", max_batch_size=3))
    assert config["platform"] == "tensorrt_plan"
    assert config["input"][0]["data_type"] == "TYPE_FP16"
    assert config["dynamic_batching"]["preferred_batch_size"] == [1, 2, 3]


def test_repository_layout(tmp_path):
    model = tmp_path / "exported.onnx"
    model.write_bytes(b"onnx bytes")
    folder = write_triton_repo(tmp_path / "repo", "deblur", model, "onnxruntime", "blurry", "sharp")
    assert folder == tmp_path / "repo" / "deblur"
    assert (folder / "1" / "model.onnx").read_bytes() == b"onnx bytes"
    assert parse_pbtxt((folder / "config.pbtxt").read_text())["name"] == "deblur"


@pytest.mark.parametrize("kwargs, message", [
    ({"platform": "tflite"}, "platform"), ({"io_dtype": "int8"}, "dtype"), ({"max_batch_size": 0}, "max_batch"),
])
def test_bad_triton_options(kwargs, message):
    args = {"name": "m", "platform": "onnxruntime", "input_name": "blurry", "output_name": "sharp"} | kwargs
    with pytest.raises(DeblurrtError, match=message):
        triton_config(**args)


def test_tensorrt_plan_lists_every_profile():
    config = parse_pbtxt(triton_config("m", "tensorrt", "blurry", "sharp", profile_count=3))
    # without the list Triton uses profile 0 only, and 720p/1080p requests would be rejected
    assert config["instance_group"][0]["profile"] == ["0", "1", "2"]
    assert "profile" not in parse_pbtxt(triton_config("m", "onnxruntime", "blurry", "sharp"))["instance_group"][0]
    with pytest.raises(DeblurrtError, match="TensorRT plans only"):
        triton_config("m", "onnxruntime", "blurry", "sharp", profile_count=2)


def test_export_to_triton_tensorrt_lists_the_engine_profiles(tmp_path, monkeypatch, tiny_model):
    from deblurrt.export import engine, trt_compat
    from deblurrt.export.pipeline import ExportRequest, run_export

    built = {}

    def fake_build(onnx_path, engine_path, profiles, *args, **kwargs):
        built["profiles"] = [p.name for p in profiles]
        engine_path.write_bytes(b"plan")

    monkeypatch.setattr(trt_compat, "import_tensorrt", lambda feature="": None)
    monkeypatch.setattr(engine, "build_engine", fake_build)
    request = ExportRequest(tiny_model["ckpt"], format="triton", triton_platform="tensorrt", precision="fp16",
                            out=tmp_path / "repo", accuracy=False, name="tiny")
    assert run_export(request, log=lambda message: None) == 0
    config = parse_pbtxt((tmp_path / "repo" / "tiny" / "config.pbtxt").read_text())
    assert built["profiles"] == ["384x640", "736x1280", "1088x1920"]
    assert config["instance_group"][0]["profile"] == ["0", "1", "2"]
