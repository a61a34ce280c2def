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


#: the largest frame side and area any command accepts: 8K video (7680x4320) fits with room; past that a
#: single frame's float buffers alone run to gigabytes, which ends in a MemoryError rather than a result
MAX_SIDE = 16384
MAX_PIXELS = 8192 * 8192


def _parse_wxh(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.strip().lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x360, received {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"sizes must be at least 16x16, received {text!r}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is too large: each side at most {MAX_SIDE} and at most {MAX_PIXELS // 1_000_000} "
            "megapixels (8K video is 7680x4320). Fix: give a camera-sized frame, or use --tile for big images")
    return width, height


def frame_size(text: str) -> tuple[int, int]:
    """``640x360`` (WIDTHxHEIGHT, as camera modes and video tools write it) -> ``(640, 360)``; each side
    >= 16, absurd sizes refused (see :data:`MAX_SIDE`)."""
    return _parse_wxh(text)


def frame_sizes(text: str) -> list[tuple[int, int]]:
    """``640x360,1280x720`` (WIDTHxHEIGHT list) -> ``[(360, 640), (720, 1280)]`` as (height, width)."""
    sizes = [frame_size(item.strip()) for item in text.split(",") if item.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError("no size given: expected e.g. 640x360,1280x720")
    return [(height, width) for width, height in sizes]


PORTRAIT_SUFFIX = ":portrait"


def size_was_hxw(text: str, option: str) -> tuple[int, int]:
    """A WIDTHxHEIGHT size for an option that used to read HEIGHTxWIDTH (``data synth --size``, the
    ``export`` shapes) -> ``(width, height)``. One number ``N`` means NxN.

    The old and the new reading of ``360x640`` are both valid sizes, so a taller-than-wide size is refused
    as ambiguous (an old command line would silently turn into a portrait frame) unless it says
    ``360x640:portrait``. Raises ``argparse.ArgumentTypeError`` with both readings and the fix."""
    raw = text.strip().lower()
    portrait = raw.endswith(PORTRAIT_SUFFIX)
    if portrait:
        raw = raw[: -len(PORTRAIT_SUFFIX)]
    if raw.isdigit():
        raw = f"{raw}x{raw}"
    width, height = _parse_wxh(raw)
    if height > width and not portrait:
        raise argparse.ArgumentTypeError(
            f"{option} {text} is ambiguous: sizes are WIDTHxHEIGHT now (as in run, bench, demo and video tools), "
            f"but {option} used to read HEIGHTxWIDTH. Fix: write {height}x{width} for a landscape frame "
            f"{height} wide and {width} high, or {width}x{height}{PORTRAIT_SUFFIX} for a portrait frame "
            f"{width} wide and {height} high")
    if portrait and height <= width:
        raise argparse.ArgumentTypeError(f"{option} {text}: '{PORTRAIT_SUFFIX}' marks a frame taller than wide, "
                                         f"and {width}x{height} is not. Fix: drop '{PORTRAIT_SUFFIX}'")
    return width, height
