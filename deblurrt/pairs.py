"""Where (blurry, sharp) pairs live on disk: shared by training datasets and ``deblurrt eval`` (torch-free).

- a paired folder: ``DIR/blur/<name>`` and ``DIR/sharp/<name>``, matched by file name
  (:func:`match_folder_names`);
- RealBlur list files: lines ``gt_path blur_path`` relative to the dataset root (:func:`read_realblur_list`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from deblurrt.errors import DeblurrtError


def preview(names: Iterable[str], limit: int = 10) -> str:
    """The first ``limit`` names, then how many more."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def match_folder_names(blur_names: Iterable[str], sharp_names: Iterable[str], blur_dir: Path,
                       sharp_dir: Path) -> list[str]:
    """Names present on both sides, sorted; names on one side only raise an error that lists them."""
    blur, sharp = set(blur_names), set(sharp_names)
    only_blur, only_sharp = sorted(blur - sharp), sorted(sharp - blur)
    if only_blur or only_sharp:
        parts = []
        if only_blur:
            parts.append(f"{len(only_blur)} only in {blur_dir}: {preview(only_blur)}")
        if only_sharp:
            parts.append(f"{len(only_sharp)} only in {sharp_dir}: {preview(only_sharp)}")
        raise DeblurrtError("blur and sharp images do not match by file name; " + "; ".join(parts)
                            + ". Fix: every blurry image needs a sharp image of the same name")
    if not blur:
        raise DeblurrtError(f"no images in {blur_dir} and {sharp_dir}. Fix: put blurry images in blur/ and sharp "
                            "ones with the same names in sharp/")
    return sorted(blur)


def read_realblur_list(root: str | os.PathLike, list_file: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """``(name, blur_path, sharp_path)`` for every line ``gt_path blur_path`` of a RealBlur list file.

    ``list_file`` may be absolute or relative to ``root``; ``#`` comments and blank lines are skipped; names
    are the blur paths. Malformed lines, missing files and empty lists raise :class:`DeblurrtError`.
    """
    root = Path(root)
    list_path = Path(list_file)
    if not list_path.is_file() and (root / list_path).is_file():
        list_path = root / list_path
    if not list_path.is_file():
        raise DeblurrtError(f"RealBlur list file {list_file} not found (also looked in {root}). Fix: give e.g. "
                            "RealBlur_J_test_list.txt from the RealBlur download")
    pairs, bad_lines, missing = [], [], []
    for number, line in enumerate(list_path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            bad_lines.append(str(number))
            continue
        sharp, blur = root / fields[0], root / fields[1]
        missing += [str(p) for p in (sharp, blur) if not p.is_file()]
        pairs.append((fields[1], blur, sharp))
    if bad_lines:
        raise DeblurrtError(f"{list_path}: line(s) {preview(bad_lines)} are not 'gt_path blur_path'")
    if missing:
        raise DeblurrtError(f"{len(missing)} file(s) of {list_path} missing under {root}: {preview(missing)}. "
                            "Fix: give the folder the list's paths are relative to")
    if not pairs:
        raise DeblurrtError(f"{list_path} lists no pairs. Fix: each line is 'gt_path blur_path'")
    return pairs
