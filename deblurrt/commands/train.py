"""Train a deblurring model: stage 1 distils the semantic prior, stage 2 trains the deblurring network.

CONFIG is one or more YAML files: configs/ has one per registered model, and configs/data/ one per dataset
(gopro, realblur, synthetic) to layer on top. Any key can then be overridden as key=value, with dotted
sections. Unknown keys are errors with a suggestion.

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

from deblurrt.errors import MissingDependencyError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt train``."""
    parser.add_argument("settings", nargs="+", metavar="CONFIG.yaml | key=value",
                        help="YAML configs (later ones override earlier ones, e.g. a model config then "
                        "configs/data/gopro.yaml), then overrides such as run.steps=1000 optim.lr=2e-4")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in run.out_dir from its state.safetensors")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


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


def run(args: argparse.Namespace) -> int:
    """Resolve the config and train."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError("torch", "'deblurrt train'", "pip install 'deblurrt[train]'") from error
    import yaml

    from deblurrt.config import ConfigError, load_config, to_dict
    from deblurrt.train.config import TrainConfig
    from deblurrt.train.trainer import Trainer

    files = [s for s in args.settings if "=" not in s]
    overrides = [s for s in args.settings if "=" in s]
    if not files:
        raise ConfigError("no config file given: pass a YAML such as configs/unet_nano_prior.yaml first")
    config = load_config(TrainConfig, files, overrides)
    _check_model_name(config.model.name)
    if args.print_config:
        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return 0
    out_dir = Trainer(config, resume=args.resume, progress=not args.no_progress).fit()
    print(f"done: {out_dir} (weights: {out_dir / 'last.safetensors'})")
    return 0
