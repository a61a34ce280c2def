"""The ``deblurrt`` command line.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``; the
module is imported only when its command runs, so ``deblurrt doctor`` works on a machine without torch.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys

from deblurrt import __version__
from deblurrt.errors import DeblurrtError

# name -> (module, one-line help). Modules are imported lazily.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("deblurrt.commands.demo", "the default job, no files needed: shaky virtual camera -> model -> side-by-side mp4"),
    "run": ("deblurrt.commands.run", "deblur a camera, stream, video or image folder in real time (ONNX Runtime, TensorRT)"),
    "eval": ("deblurrt.commands.eval", "score a model on blurry/sharp pairs (paired, GoPro, RealBlur): PSNR/SSIM in and out"),
    "validate": ("deblurrt.commands.validate", "the blur-only validation: gain per blur length on two recipes, do-no-harm on sharp frames"),
    "bench": ("deblurrt.commands.bench", "benchmark models: latency percentiles, FPS, end-to-end pipeline, reports and plots"),
    "export": ("deblurrt.commands.export", "export a checkpoint to ONNX (FP32/FP16/INT8), a TensorRT engine or Triton, checked"),
    "train": ("deblurrt.commands.train", "train a model: distil the semantic prior, then deblur (resumable)"),
    "data": ("deblurrt.commands.data", "make data: synthesise (blurry, sharp) pair sets from sharp photos, split photos"),
    "models": ("deblurrt.commands.models", "list the model zoo: parameters and GMACs per 720p frame"),
    "doctor": ("deblurrt.doctor", "show what this machine can run: Python, torch, ONNX Runtime, TensorRT, GPU, OpenCV"),
}

EPILOG = """\
pipeline:
  train (PyTorch, semantic prior)  ->  export (ONNX, FP16/INT8, TensorRT)  ->  run (camera -> deblurred stream)

examples:
  deblurrt demo                               virtual shaky camera -> default model -> demo.mp4
  deblurrt run /dev/video0 --headless         deblur a USB camera (csi://0 on a Jetson, rtsp://..., file.mp4, dir/)
  deblurrt run clip.mp4 sharp.mp4 --model weights/unet_nano_prior.onnx --side-by-side
  deblurrt eval model.onnx --data val/        PSNR/SSIM on blur/ + sharp/ pairs
  deblurrt bench --model unet_nano_prior --size 640x360    latency percentiles and FPS
  deblurrt export ckpt.safetensors --precision fp16        checked ONNX (or --format engine on the target)
  deblurrt train configs/unet_nano_prior.yaml run.steps=2000    train (key=value overrides any setting)
  deblurrt models                             the zoo: with and without the semantic prior, GMACs at 720p
  deblurrt doctor                             which backends this machine can use, and why not

Run 'deblurrt COMMAND --help' for the options of a command.
"""


class CommandParser(argparse.ArgumentParser):
    """An argument parser that reports arguments it does not know itself, with its own usage and the closest
    option names. (argparse hands a subcommand's leftovers up to the top-level parser, whose message shows
    ``deblurrt [-h] [--version] COMMAND`` and nothing of the options the user was reaching for.)"""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(self.unrecognized_message(extras))
        return namespace, extras

    def unrecognized_message(self, extras: list[str]) -> str:
        """``unrecognized arguments: ...`` with a "did you mean" for each option-like one that is close to one
        of this parser's options."""
        known = [option for action in self._actions for option in action.option_strings]
        hints = []
        for extra in extras:
            if not extra.startswith("-"):
                continue
            close = difflib.get_close_matches(extra.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                hints.append((extra.split("=", 1)[0], close[0]))
        message = f"unrecognized arguments: {' '.join(extras)}"
        if len(hints) == 1:
            message += f" (did you mean {hints[0][1]}?)"
        elif hints:
            message += " (" + "; ".join(f"{typed}: did you mean {option}?" for typed, option in hints) + ")"
        elif any(not extra.startswith("-") for extra in extras):
            message += f" (more positional arguments than '{self.prog}' takes; see '{self.prog} --help')"
        return message


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser. Only ``command``'s module is imported (to add its options); the others are
    listed by name and help line, so one command's missing dependency never breaks another."""
    parser = CommandParser(
        prog="deblurrt",
        description="Remove motion blur from camera streams in real time, with prior-embedded deblurring "
        "models on NVIDIA GPUs (TensorRT), Jetson boards, or a CPU (ONNX Runtime).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"deblurrt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=help_text, add_help=False)
            continue
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


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first argument that is not an option), if any."""
    for argument in argv:
        if not argument.startswith("-"):
            return argument if argument in COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``deblurrt`` console script. Returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except DeblurrtError as error:
        print(f"deblurrt {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"deblurrt {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (deblurrt models | head): not an error worth a traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
