"""Typed config: YAML + key=value overrides, unknown keys and wrong types are errors that help."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from deblurrt.config import ConfigError, load_config, to_dict


@dataclass
class Inner:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    mode: Literal["frozen", "finetune"] = "finetune"


@dataclass
class Outer:
    name: str = "unet"
    steps: int = 10
    flags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: nafnet\ninner:\n  lr: 1e-4\n")
    config = load_config(Outer, path, ["steps=20", "inner.betas=[0.8, 0.9]", "flags=[a, b]"])
    assert config.name == "nafnet" and config.steps == 20
    assert config.inner.lr == pytest.approx(1e-4) and config.inner.betas == (0.8, 0.9)
    assert config.flags == ["a", "b"]
    assert to_dict(config)["inner"]["betas"] == [0.8, 0.9]


@pytest.mark.parametrize("override, message", [
    ("inner.lrr=1", "did you mean 'lr'"),
    ("stpes=3", "did you mean 'steps'"),
    ("steps=abc", "steps: expected an integer"),
    ("inner.mode=thawed", "expected one of \\['frozen', 'finetune'\\]"),
    ("inner.betas=[1]", "expected 2 values"),
    ("steps", "not key=value"),
    ("name.x=1", "is not a section"),
])
def test_bad_overrides_explain_themselves(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Outer, None, [override])


def test_unknown_key_in_yaml_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("inner:\n  lR: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*inner.lR.*did you mean 'lr'"):
        load_config(Outer, path)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(Outer, path)


def test_every_shipped_training_config_loads():
    from pathlib import Path

    from deblurrt.train.config import TrainConfig
    from deblurrt.train.models import list_models

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))
    names = {path.stem for path in configs}
    assert set(list_models()) <= names
    for path in configs:
        config = load_config(TrainConfig, path)
        if path.stem in set(list_models()):
            assert config.model.name == path.stem


def test_dataset_config_layers_on_a_model_config():
    from pathlib import Path

    from deblurrt.train.config import TrainConfig

    configs = Path(__file__).resolve().parents[1] / "configs"
    config = load_config(TrainConfig, [configs / "nafnet_small_prior.yaml", configs / "data" / "gopro.yaml"],
                         ["data.root=/data/GOPRO_Large"])
    assert config.model.name == "nafnet_small_prior" and config.data.kind == "gopro"
    assert config.data.batch_size == 8 and config.data.root == "/data/GOPRO_Large"
    assert config.run.steps == 300000 and config.run.out_dir == "runs/nafnet_small_prior"
