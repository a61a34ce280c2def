"""Argument types shared by the subcommands: each raises ``argparse.ArgumentTypeError`` with the expected form."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, received {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, received {text!r}")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}")
    return value


def frame_size(text: str) -> tuple[int, int]:
    """``640x360`` (WIDTHxHEIGHT, as camera modes are written) -> ``(640, 360)``; each side >= 16."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x360, received {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"sizes must be at least 16x16, received {text!r}")
    return width, height


def frame_sizes(text: str) -> list[tuple[int, int]]:
    """``640x360,1280x720`` (WIDTHxHEIGHT list) -> ``[(360, 640), (720, 1280)]`` as (height, width)."""
    sizes = [frame_size(item.strip()) for item in text.split(",") if item.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError("no size given: expected e.g. 640x360,1280x720")
    return [(height, width) for width, height in sizes]
