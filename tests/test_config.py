"""Typed config: YAML + key=value overrides, unknown keys and wrong types are errors that help."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
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

    from deblurrt.train.config import TrainConfig, check_values
    from deblurrt.train.models import list_models

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))
    names = {path.stem for path in configs}
    assert set(list_models()) <= names
    for path in configs:
        config = load_config(TrainConfig, path)
        check_values(config)  # every shipped value is in range
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


# ------------------------------------------------------------------------------- training config values

REPO = Path(__file__).resolve().parents[1]
NANO = str(REPO / "configs" / "unet_nano_prior.yaml")


@pytest.mark.parametrize("override, shown, expected", [
    ("data.batch_size=0", "data.batch_size=0", ">= 1"),
    ("data.crop=0", "data.crop=0", ">= 16"),
    ("data.workers=-1", "data.workers=-1", ">= 0"),
    ("data.reuse=0", "data.reuse=0", ">= 1"),
    ("data.pool=-8", "data.pool=-8", ">= 0"),
    ("data.pool=12", "data.pool=12", "multiple of data.batch_size=8"),
    ("data.pool=16", "data.pool=16", "needs data.reuse > 1"),
    ("data.sharp_share=1.5", "data.sharp_share=1.5", "[0, 1]"),
    ("optim.lr=0", "optim.lr=0.0", "> 0"),
    ("optim.lr=.nan", "optim.lr=nan", "> 0"),
    ("optim.betas=[0.9, 1.0]", "optim.betas=[0.9, 1.0]", "[0, 1)"),
    ("optim.grad_clip=0", "optim.grad_clip=0.0", "> 0"),
    ("optim.ema_decay=1.5", "optim.ema_decay=1.5", "[0, 1]"),
    ("loss.psnr_cap_db=5", "loss.psnr_cap_db=5.0", "10-100 dB"),
    ("run.steps=-5", "run.steps=-5", ">= 1"),
    ("run.steps=0", "run.steps=0", ">= 1"),
    ("run.time_budget_s=-1", "run.time_budget_s=-1.0", ">= 0"),
    ("run.time_budget_s=.inf", "run.time_budget_s=inf", ">= 0"),
    ("run.log_every=0", "run.log_every=0", ">= 1"),
    ("run.ckpt_every=0", "run.ckpt_every=0", ">= 1"),
    ("run.seed=-1", "run.seed=-1", "[0, 2**32)"),
    ("run.out_dir=", "run.out_dir=''", "a folder"),
    ("data.severity=huge", "data.severity: bad severity 'huge'", "or mixed"),
    ("data.blur_px=4-1e9", "data.blur_px: bad severity '4-1e9'", "0 < HI <= 256 (pixels of the produced image)"),
    ("data.defocus_px=0-8", "data.defocus_px='0-8'", "0 < LO <= HI <= 64"),
    ("data.defocus_px=16-2", "data.defocus_px='16-2'", "0 < LO <= HI <= 64"),
    ("data.defocus_px=2-inf", "data.defocus_px='2-inf'", "0 < LO <= HI <= 64"),
    ("data.defocus_px=large", "data.defocus_px='large'", "a disk radius range LO-HI"),
])
def test_out_of_range_training_values_name_key_value_and_fix(override, shown, expected):
    from deblurrt.train.config import TrainConfig, check_values

    config = load_config(TrainConfig, NANO, [override])  # the types are right: only the value is wrong
    with pytest.raises(ConfigError) as info:
        check_values(config)
    message = str(info.value)
    assert message.startswith(shown) and expected in message and "Fix:" in message
    assert "\n" not in message


def test_defocus_radius_reaches_the_training_recipe():
    from deblurrt.synthesis import BlurConfig
    from deblurrt.train.config import TrainConfig
    from deblurrt.train.loaders import synthetic_recipe

    assert synthetic_recipe(load_config(TrainConfig, NANO, ["data.defocus_px=2-16"])).defocus_px == (2.0, 16.0)
    assert synthetic_recipe(load_config(TrainConfig, NANO, ["data.defocus_px=12"])).defocus_px == (12.0, 12.0)
    # empty keeps the recipe's own range
    assert synthetic_recipe(load_config(TrainConfig, NANO, [])).defocus_px == BlurConfig().defocus_px


def _train(capsys, *settings: str) -> tuple[int, str, str]:
    from deblurrt.cli import main

    code = main(["train", NANO, *settings, "--print-config"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("override, wanted", [
    # used to pass --print-config, then ZeroDivisionError in the loader after run.out_dir was made
    ("data.batch_size=0", ["data.batch_size=0: expected an integer >= 1", "Fix: e.g. data.batch_size=8"]),
    # used to be a TypeError traceback from create_model
    ("model.args={bogus: 1}", ["has no option 'bogus'",
                               "its options are blur_descriptor, coarse_guide, coarse_levels, depths"]),
    ("model.args={widht: 24}", ["did you mean 'width'?", "Fix: 'model.args={width: 24}'"]),
    ("model.args={coarse_guide: maybe}", ["model.args.coarse_guide: expected true or false, received 'maybe'",
                                          "Fix: e.g. 'model.args={coarse_guide: false}'"]),
    # a value the constructor refuses: used to be a ValueError traceback once the run had started
    ("model.args={coarse_guide: true, coarse_levels: 0}", ["model.args: UNet: coarse_levels must be >= 1",
                                                          "received 0. Fix: change that value in model.args"]),
    ("distill.teacher=efficientnet_lite", ["did you mean 'efficientnet_lite0'?", "distill.teacher="]),
    ("run.device=gpu", ["run.device='gpu': expected auto, cpu, cuda or cuda:N"]),
])
def test_train_print_config_reports_bad_values_in_one_line(capsys, tmp_path, override, wanted):
    code, out, err = _train(capsys, override, f"run.out_dir={tmp_path / 'run'}")
    assert code == 2 and out == ""
    assert all(part in err for part in wanted), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_train_run_out_dir_must_be_a_writable_folder_outside_the_data(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    code, out, err = _train(capsys, f"run.out_dir={afile}")
    assert code == 2 and "run.out_dir" in err and "is a file, not a folder" in err and "Fix:" in err
    code, _, err = _train(capsys, f"run.out_dir={afile / 'run'}")
    assert code == 2 and "is a file, not a folder" in err
    assert afile.read_text() == "not a folder"
    photos = tmp_path / "photos"
    photos.mkdir()
    code, _, err = _train(capsys, f"data.root={photos}", f"run.out_dir={photos}")
    assert code == 2 and "is the input" in err
    code, _, err = _train(capsys, f"data.root={photos}", f"run.out_dir={tmp_path}")
    assert code == 2 and "contains the input folder" in err


def test_train_print_config_accepts_good_values_and_writes_nothing(capsys, tmp_path):
    out_dir = tmp_path / "runs" / "nano"
    code, out, err = _train(capsys, f"run.out_dir={out_dir}", "model.args={width: 24, coarse_guide: true}",
                            "data.reuse=4", "data.pool=64", "data.blur_px=4-80", "run.device=cuda:1",
                            "distill.teacher=tiny", "optim.grad_clip=.inf")
    assert code == 0, err
    assert "width: 24" in out and "pool: 64" in out
    assert not out_dir.exists() and list(tmp_path.iterdir()) == []
