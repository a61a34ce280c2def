"""Train a deblurring model: stage 1 distils the semantic prior, stage 2 trains the deblurring network.

CONFIG is one or more YAML files: configs/ has one per registered model, and configs/data/ one per dataset
(gopro, realblur, synthetic) to layer on top. Any key can then be overridden as key=value, with dotted
sections. Unknown keys are errors with a suggestion; so are unknown model.args options. Values are checked
when the config is read (--print-config too): ranges such as data.batch_size >= 1, the model's options, the
teacher, run.device, and run.out_dir (a folder that can be written, not the data), before any data is read.

Outputs in run.out_dir: state.safetensors (resumable state, written atomically every run.ckpt_every
steps), last.safetensors and best.safetensors (deployable weights with their config embedded: give them to
'deblurrt export'), metrics.csv, curves.png and the resolved config.yaml.

examples:
  # stage 1: distil the prior from EfficientNet-Lite0 (teacher on sharp, student on blurry crops)
  deblurrt train configs/unet_nano_prior.yaml run.stage=distill run.steps=2000 run.out_dir=runs/prior
  # stage 2: deblurring, student initialised from stage 1 and fine-tuned at a tenth of the rate
  deblurrt train configs/unet_nano_prior.yaml prior.init=runs/prior/last.safetensors
  # continue a run that was stopped or killed, exactly where its last checkpoint left it
  deblurrt train configs/unet_nano_prior.yaml --resume
  # on GoPro instead of synthetic blur
  deblurrt train configs/nafnet_small_prior.yaml configs/data/gopro.yaml data.root=/data/GOPRO_Large
  # several GPUs or nodes
  torchrun --nproc_per_node 4 -m deblurrt train configs/nafnet_small_prior.yaml data.batch_size=8
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import typing
from typing import TYPE_CHECKING, Any

from deblurrt.errors import MissingDependencyError

if TYPE_CHECKING:
    from deblurrt.train.config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt train``."""
    parser.add_argument("settings", nargs="+", metavar="CONFIG.yaml | key=value",
                        help="YAML configs (later ones override earlier ones, e.g. a model config then "
                        "configs/data/gopro.yaml), then overrides such as run.steps=1000 optim.lr=2e-4")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in run.out_dir from its state.safetensors")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    parser.add_argument("--print-config", action="store_true",
                        help="check every value, print the resolved config and exit (nothing is written)")


def _check_model_name(name: str) -> None:
    """An unknown ``model.name`` is a config typo like any other: one line with the closest names, before
    any data is read or any network is built."""
    from deblurrt.config import ConfigError
    from deblurrt.errors import UnknownModelError
    from deblurrt.train.models.registry import get_spec

    try:
        get_spec(name)
    except UnknownModelError as error:
        raise ConfigError(f"model.name: {error}") from error


def _check_model_args(name: str, args: dict[str, Any]) -> None:
    """``model.args`` may only name constructor options of the model's backbone (the set ``create_model``
    accepts), with values of their types: a typo is one line listing the options, not a ``TypeError`` once
    the run has started."""
    from deblurrt.config import ConfigError, _coerce
    from deblurrt.train.config import format_value
    from deblurrt.train.models.registry import BACKBONES, accepted_args, get_spec

    spec = get_spec(name)
    backbone = BACKBONES[spec.backbone]
    parameters = inspect.signature(backbone).parameters
    accepted = sorted(accepted_args(name))  # the set create_model checks
    for key, value in args.items():
        if key not in accepted:
            close = difflib.get_close_matches(str(key), accepted, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'? " if close else ""
            # model.args is one mapping (not a section): an override replaces it whole, in YAML flow style
            fix = f"'model.args={{{close[0]}: {format_value(value)}}}'" if close else \
                "one of those names, or model.args={} for the registered model as it is"
            raise ConfigError(f"model.args: {name} ({spec.backbone}) has no option '{key}' (received {key}: "
                              f"{format_value(value)}): {hint}its options are {', '.join(accepted)}. Fix: {fix}")
    try:
        hints = typing.get_type_hints(backbone.__init__)
    except (NameError, TypeError):
        return  # an annotation that does not resolve: the names are checked, the types cannot be
    for key, value in args.items():
        if key not in hints:
            continue
        try:
            # the config's own coercion rules, so 'coarse_guide: maybe' fails as 'run.amp=maybe' does
            _coerce(value, hints[key], f"model.args.{key}")
        except ConfigError as error:
            registered = spec.args.get(key, parameters[key].default if key in parameters else None)
            example = json.dumps(registered) if isinstance(registered, bool | int | float | str | tuple) else None
            fix = f" Fix: e.g. 'model.args={{{key}: {example}}}' ({name}'s own value)" if example else ""
            raise ConfigError(f"{error}.{fix}") from None
    # the values' own rules (coarse_levels >= 1, ...) are the constructor's: built without memory, on the meta
    # device, a wrong value is one line before the run starts, not a traceback from inside it
    import torch

    from deblurrt.train.models.registry import create_model

    try:
        with torch.device("meta"):
            create_model(name, **args)
    except ValueError as error:
        raise ConfigError(f"model.args: {error}. Fix: change that value in model.args") from None


def _check_teacher(name: str) -> None:
    """``distill.teacher`` names a known teacher (it is built only in the distill and joint stages, too late
    for a typo to surface before the run has started)."""
    from deblurrt.config import ConfigError
    from deblurrt.train.teacher import known_teachers

    known = list(known_teachers())
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"distill.teacher={name!r} is not a known teacher: {hint}known: {', '.join(known)}. "
                          f"Fix: e.g. distill.teacher={known[0]}")


def _check_device(setting: str) -> None:
    """``run.device`` is auto, cpu, cuda or another device torch can parse (cuda:1); whether that device
    exists is decided when the run starts (torchrun picks the GPU of each rank)."""
    import torch

    from deblurrt.config import ConfigError

    if setting == "auto":
        return
    try:
        torch.device(setting)
    except (RuntimeError, ValueError):
        # torch's own message lists twenty device types; these are the ones training supports
        raise ConfigError(f"run.device={setting!r}: expected auto, cpu, cuda or cuda:N. Fix: e.g. "
                          "run.device=auto") from None


def _check_out_dir(config: TrainConfig) -> None:
    """``run.out_dir`` can hold the run: a folder (or creatable), writable, and neither the training or
    validation data nor a folder that contains them (its curves.png would become a training photo). An
    existing run there is the trainer's to refuse, since --resume continues it."""
    from deblurrt.outputs import check_output_folder

    inputs = [root for root in (config.data.root, config.data.val_root) if root]
    check_output_folder(config.run.out_dir, option="run.out_dir", overwrite=True, inputs=inputs)


def run(args: argparse.Namespace) -> int:
    """Resolve the config and train."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError("torch", "'deblurrt train'", "pip install 'deblurrt[train]'") from error
    import yaml

    from deblurrt.config import ConfigError, load_config, to_dict
    from deblurrt.train.config import TrainConfig, check_values
    from deblurrt.train.trainer import Trainer

    files = [s for s in args.settings if "=" not in s]
    overrides = [s for s in args.settings if "=" in s]
    if not files:
        raise ConfigError("no config file given: pass a YAML such as configs/unet_nano_prior.yaml first")
    config = load_config(TrainConfig, files, overrides)
    _check_model_name(config.model.name)
    # every value before anything is printed or written: --print-config is the way to check a config
    check_values(config)
    _check_model_args(config.model.name, config.model.args)
    _check_teacher(config.distill.teacher)
    _check_device(config.run.device)
    _check_out_dir(config)
    if args.print_config:
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return 0
    out_dir = Trainer(config, resume=args.resume, progress=not args.no_progress).fit()
    print(f"done: {out_dir} (weights: {out_dir / 'last.safetensors'})")
    return 0
