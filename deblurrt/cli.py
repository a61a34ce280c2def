"""The ``deblurrt`` command line.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``; the
module is imported only when its command runs, so ``deblurrt doctor`` works on a machine without torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from deblurrt import __version__
from deblurrt.errors import DeblurrtError

# name -> (module, one-line help). Modules are imported lazily.
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("deblurrt.commands.models", "list the model zoo: parameters and GMACs per 720p frame"),
    "train": ("deblurrt.commands.train", "train a model: distil the semantic prior, then deblur (resumable)"),
    "data": ("deblurrt.commands.data", "make data: synthesise (blurry, sharp) pair sets from sharp photos, split photos"),
    "run": ("deblurrt.commands.run", "deblur a camera, stream, video or image folder in real time (ONNX Runtime, TensorRT)"),
    "doctor": ("deblurrt.doctor", "show what this machine can run: Python, torch, ONNX Runtime, TensorRT, GPU, OpenCV"),
    "export": ("deblurrt.commands.export", "export a checkpoint to ONNX (FP32/FP16/INT8), a TensorRT engine or Triton, checked"),
}

EPILOG = """\
pipeline:
  train (PyTorch, semantic prior)  ->  export (ONNX, FP16/INT8, TensorRT)  ->  run (camera -> deblurred stream)

examples:
  deblurrt models                 the registered architectures, with and without the semantic prior
  deblurrt models --json          the same as JSON (name, backbone, prior, params, gmacs_720p)
  deblurrt doctor                 which backends this machine can use, and why not
  deblurrt train configs/unet_nano_prior.yaml run.steps=2000    train (key=value overrides any setting)

Run 'deblurrt COMMAND --help' for the options of a command.
"""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand's arguments registered."""
    parser = argparse.ArgumentParser(
        prog="deblurrt",
        description="Remove motion blur from camera streams in real time, with prior-embedded deblurring "
        "models on NVIDIA GPUs (TensorRT), Jetson boards, or a CPU (ONNX Runtime).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"deblurrt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``deblurrt`` console script. Returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except DeblurrtError as error:
        print(f"deblurrt {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deblurrt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
