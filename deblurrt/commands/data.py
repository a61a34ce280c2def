"""Make deblurring data from sharp photos: fixed (blurry, sharp) pair sets for validation and benchmarks,
and train/validation splits by photo.

subcommands:
  synth   synthesise N pairs from a folder of sharp photos into OUT_DIR/blur and OUT_DIR/sharp (8-bit PNG,
          same names) plus OUT_DIR/synth.json, which records everything needed to make the set again.
          The same arguments give byte-identical PNGs (on the same numpy/OpenCV versions).
  split   hold photos out: print (or write) the names of a seeded validation subset, for --photos-list
          (an existing list with other names is refused unless --overwrite).

Blur model: camera shake (translation, roll, zoom) along a smooth random trajectory, averaged in linear
light, with light streaks from saturated highlights, an occasional moving foreground object, sensor noise
and JPEG. Severity is the peak displacement (the longest streak) in pixels at a 256-px short side, scaled
with --size: mild 3-8, moderate 8-18, severe 18-35, or a range LO-HI.

examples:
  deblurrt data split photos/ --val-fraction 0.15 --out lists/
  deblurrt data synth photos/ val_moderate --photos-list lists/val_photos.txt --count 200 --size 256
  deblurrt data synth photos/ val_severe --severity severe --count 100 --size 640x360 --seed 7
  deblurrt data synth photos/ bench_set --severity 10-25 --exclude Dune.jpg,Kite.jpg --jpeg-prob 0
  deblurrt data synth photos/ val_moderate --count 200 --overwrite   replace an existing set

Run 'deblurrt data synth --help' for all options.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from deblurrt import __version__
from deblurrt.errors import DeblurrtError
from deblurrt.outputs import WRITE_FIX, OutputError, os_reason, write_text_atomic

SYNTH_HELP = """\
Synthesise a fixed set of (blurry, sharp) pairs from sharp photos.

Writes OUT_DIR/blur/NNNN_<photo>.png and OUT_DIR/sharp/NNNN_<photo>.png (8-bit PNG, the same names, ready
for PairedFolder) and OUT_DIR/synth.json (arguments, versions, severity in pixels, and per item the photo,
crop box, flip/rot90 and seeds). Photos are used in turn (item i takes photo i mod count, sorted by
name); within a photo the crop prefers textured, in-focus regions. Photos with a long side above
--max-side are downscaled first. Each PNG is written under a temporary name and renamed when complete;
synth.json is written last, so a set without it is incomplete.

--size is WIDTHxHEIGHT (as in run, bench, demo and video tools), or N for NxN. It used to be HEIGHTxWIDTH:
a taller-than-wide size is refused as ambiguous unless written WxH:portrait (e.g. 360x640:portrait).

--overwrite replaces a set made before: it deletes only the pairs the old synth.json lists (and synth.json),
never other files. A blur/ or sharp/ holding PNGs that synth.json does not list (someone else's, or left by
an interrupted run) is refused: they would mix into the new set. The output folder is checked (a folder,
writable) before any photo is read; a failed write (disk full) stops with the path and the reason.

examples:
  deblurrt data synth photos/ val_set --count 200 --size 256 --seed 0
  deblurrt data synth photos/ val_720p --severity severe --count 50 --size 1280x720
  deblurrt data synth photos/ val_set --photos-list val_photos.txt --severity 12-20 --jpeg-prob 0
  deblurrt data synth photos/ clean_set --clean             motion blur only (no noise/streaks/JPEG)
"""

SPLIT_HELP = """\
Choose validation photos: a seeded random subset (--val-fraction) of the photos in PHOTOS_DIR, sorted by
name, deterministic for the same folder and seed. Prints the validation names, or with --out writes
DIR/train_photos.txt and DIR/val_photos.txt (one name per line), for 'deblurrt data synth --photos-list'
and for training on the rest.

These lists decide which photos are held out of training, so an existing list with other names is refused
unless --overwrite is given (one that already holds the same names is kept: running the same command again
is harmless); both files are checked before either is written, and each is written under a temporary name
and renamed when complete.

examples:
  deblurrt data split photos/ --val-fraction 0.15 > val_photos.txt
  deblurrt data split photos/ --val-fraction 0.15 --seed 3 --out lists/
  deblurrt data split photos/ --val-fraction 0.2 --out lists/ --overwrite   replace existing lists
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt data``: the ``synth`` and ``split`` subcommands."""
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    synth = sub.add_parser("synth", help="synthesise a fixed (blurry, sharp) PNG set from sharp photos",
                           description=SYNTH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    synth.add_argument("photos_dir", metavar="PHOTOS_DIR", help="folder of sharp photos (png/jpg/bmp/tif)")
    synth.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created; must be empty unless "
                       "--overwrite)")
    synth.add_argument("--count", type=int, default=100, help="number of pairs (default 100)")
    synth.add_argument("--size", default="256", help="pair size WIDTHxHEIGHT (e.g. 640x360) or N for NxN "
                       "(default 256)")
    synth.add_argument("--severity", default="moderate",
                       help="mild | moderate | severe | LO-HI: peak displacement in px at a 256-px short "
                            "side, scaled with --size (default moderate = 8-18)")
    synth.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    synth.add_argument("--jpeg-prob", type=float, default=None,
                       help="probability of JPEG re-encoding a blurry image (default 0.3; 0 with --clean)")
    synth.add_argument("--clean", action="store_true",
                       help="motion blur only: no noise, highlight streaks, moving foreground or JPEG")
    choose = synth.add_mutually_exclusive_group()
    choose.add_argument("--photos-list", metavar="FILE",
                        help="use only the photos named in FILE (one file name or stem per line, # comments)")
    choose.add_argument("--exclude", metavar="NAMES", action="append", default=[],
                        help="leave out these photos (comma-separated names or stems; repeatable)")
    synth.add_argument("--max-side", type=int, default=1280,
                       help="downscale photos whose long side exceeds this (default 1280; 0 = never)")
    synth.add_argument("--no-augment", action="store_true", help="no random flips / quarter turns of crops")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace an existing set: deletes the pairs its synth.json lists, nothing else")

    split = sub.add_parser("split", help="choose validation photos (a seeded subset)", description=SPLIT_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    split.add_argument("photos_dir", metavar="PHOTOS_DIR", help="folder of sharp photos")
    split.add_argument("--val-fraction", type=float, default=0.1, help="share of photos held out (default 0.1)")
    split.add_argument("--seed", type=int, default=0, help="seed of the choice (default 0)")
    split.add_argument("--out", metavar="DIR", help="write DIR/train_photos.txt and DIR/val_photos.txt")
    split.add_argument("--overwrite", action="store_true",
                       help="replace existing DIR/train_photos.txt and DIR/val_photos.txt")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the subcommand."""
    if args.data_command == "synth":
        return run_synth(args)
    return run_split(args)


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` (``640x360``) or ``N`` to ``(height, width)``; an error names the bad value and the fix (the
    old HxW form, a taller-than-wide size, is refused as ambiguous: see :func:`deblurrt.argtypes.size_was_hxw`)."""
    from deblurrt.argtypes import size_was_hxw

    try:
        width, height = size_was_hxw(text.replace("*", "x"), "--size")
    except argparse.ArgumentTypeError as error:
        raise DeblurrtError(f"bad --size: {error}. Sizes: WIDTHxHEIGHT such as 256x256 or 640x360 (each >= 16), "
                            "or one number N for NxN") from None
    return height, width


def _read_name_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DeblurrtError(f"--photos-list file {path} not found")
    names = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    names = [name for name in names if name]
    if not names:
        raise DeblurrtError(f"--photos-list file {path} names no photos")
    return names


def _choose_photos(args: argparse.Namespace) -> list[Path]:
    from deblurrt.train.data.photos import list_images, select_names

    photos_dir = Path(args.photos_dir)
    if not photos_dir.is_dir():
        raise DeblurrtError(f"photo folder {photos_dir} does not exist. Fix: give a folder of sharp photos")
    photos = list_images(photos_dir)
    if not photos:
        raise DeblurrtError(f"no images (png/jpg/jpeg/bmp/tif) in {photos_dir}. Fix: put sharp photos there")
    if args.photos_list:
        photos = select_names(photos, _read_name_list(Path(args.photos_list)), what="--photos-list")
    elif args.exclude:
        excluded = [name for group in args.exclude for name in group.split(",")]
        dropped = set(select_names(photos, excluded, what="--exclude"))
        photos = [photo for photo in photos if photo not in dropped]
        if not photos:
            raise DeblurrtError("--exclude leaves no photos")
    return photos


def _previous_set(out_dir: Path) -> list[str]:
    """The pair names a previous ``data synth`` recorded in ``out_dir/synth.json`` (none without one)."""
    record = out_dir / "synth.json"
    if not record.is_file():
        return []
    try:
        items = json.loads(record.read_text()).get("items", [])
        return [str(item["name"]) for item in items]
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as error:
        raise DeblurrtError(f"{record} is unreadable ({error}), so what it made is unknown. Fix: move the set "
                            "away or choose a new OUT_DIR") from error


def _check_out_dir(out_dir: Path, overwrite: bool, inputs: list[str | None]) -> list[str]:
    """Before any photo is read: OUT_DIR is a writable folder, empty unless ``overwrite``, and holds no PNG
    that the old synth.json does not list (they would mix into the new set). OUT_DIR that is one of
    ``inputs`` (the photo folder, the --photos-list file) or contains one is refused even with
    ``overwrite``. Returns the names to replace."""
    from deblurrt.outputs import check_output_folder

    # the input check comes first and ignores --overwrite: a set written into the photo folder would mix
    # its blur/ and sharp/ folders and synth.json with the photos (README: "always refused")
    check_output_folder(out_dir, option="OUT_DIR", overwrite=True, inputs=inputs)
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return []
    if not overwrite:
        raise DeblurrtError(f"{out_dir} is not empty. Fix: choose a new OUT_DIR or add --overwrite")
    previous = set(_previous_set(out_dir))
    foreign = sorted(str(path.relative_to(out_dir)) for sub in ("blur", "sharp") if (out_dir / sub).is_dir()
                     for path in (out_dir / sub).iterdir() if path.name not in previous)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise DeblurrtError(f"{out_dir} holds {len(foreign)} file(s) that its synth.json does not list ({shown}): "
                            "--overwrite deletes only the pairs 'data synth' recorded, and these would mix into "
                            "the new set. Fix: move them away, or choose a new OUT_DIR")
    return sorted(previous)


def _prepare_out_dir(out_dir: Path, replace: list[str]) -> None:
    """Delete the pairs of the previous set (only those its synth.json lists), then create blur/ and sharp/."""
    try:
        # remove only what a previous run wrote, so a smaller --count leaves no stale pairs behind
        for name in replace:
            for sub in ("blur", "sharp"):
                (out_dir / sub / name).unlink(missing_ok=True)
        (out_dir / "synth.json").unlink(missing_ok=True)
        for sub in ("blur", "sharp"):
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot prepare {out_dir}: {os_reason(error)}. Fix: choose a writable OUT_DIR") from error


def _command_line(args: argparse.Namespace) -> str:
    """A canonical command that remakes the set (the arguments as parsed, defaults spelled out)."""
    parts = ["deblurrt", "data", "synth", args.photos_dir, args.out_dir, "--count", str(args.count),
             "--size", args.size, "--severity", args.severity, "--seed", str(args.seed),
             "--max-side", str(args.max_side)]
    if args.jpeg_prob is not None:
        parts += ["--jpeg-prob", str(args.jpeg_prob)]
    if args.photos_list:
        parts += ["--photos-list", args.photos_list]
    for group in args.exclude:
        parts += ["--exclude", group]
    parts += [flag for flag, on in (("--clean", args.clean), ("--no-augment", args.no_augment)) if on]
    return shlex.join(parts)


def run_synth(args: argparse.Namespace) -> int:
    """``deblurrt data synth``: write the pair set and its record."""
    import cv2
    import numpy as np
    from tqdm import tqdm

    from deblurrt.synthesis import BlurConfig, parse_severity
    from deblurrt.train.data.photos import PhotoPool, make_synthetic_item, save_png

    height, width = parse_size(args.size)
    if args.count <= 0:
        raise DeblurrtError(f"--count must be positive, got {args.count}")
    if args.seed < 0:
        raise DeblurrtError(f"--seed must be >= 0, got {args.seed}")
    if args.max_side < 0:
        raise DeblurrtError(f"--max-side must be >= 0, got {args.max_side}")
    try:
        severity = parse_severity(args.severity)
    except DeblurrtError as error:
        raise DeblurrtError(f"--severity: {error}") from None
    overrides = {} if args.jpeg_prob is None else {"jpeg_prob": args.jpeg_prob}
    config = (BlurConfig.clean if args.clean else BlurConfig.preset)(severity, **overrides)
    out_dir = Path(args.out_dir)
    replace = _check_out_dir(out_dir, args.overwrite, inputs=[args.photos_dir, args.photos_list])
    photos = _choose_photos(args)
    augment = not args.no_augment

    pool = PhotoPool(photos, max_side=args.max_side or None)
    # quarter turns swap the sides, so with augmentation every photo must hold both orientations
    side = max(height, width)
    pool.check_size(side if augment else height, side if augment else width)
    _prepare_out_dir(out_dir, replace)

    items = []
    digits = max(4, len(str(args.count - 1)))
    for index in tqdm(range(args.count), desc="synth", unit="pair", file=sys.stderr):
        # two independent 63-bit seeds per item, recorded so one item can be remade alone
        crop_seed, blur_seed = (int(s) >> 1 for s in
                                np.random.SeedSequence([args.seed, index]).generate_state(2, np.uint64))
        blurry, sharp, record = make_synthetic_item(pool, crop_seed, blur_seed, (height, width), config,
                                                    augment_crops=augment, photo=index % len(pool))
        name = f"{index:0{digits}d}_{Path(record['photo']).stem}.png"
        for sub, image in (("blur", blurry), ("sharp", sharp)):
            try:
                save_png(out_dir / sub / name, image)
            except OSError as error:
                raise OutputError(f"cannot write {out_dir / sub / name} (pair {index + 1} of {args.count}): "
                                  f"{os_reason(error)}; the set is incomplete (no synth.json). {WRITE_FIX}") from error
        items.append({"name": name, **record})

    lo, hi = config.severity_range_px(height, width)
    manifest = {
        "command": _command_line(args),
        "arguments": {key: value for key, value in sorted(vars(args).items()) if not key.startswith("_")},
        "versions": {"deblurrt": __version__, "numpy": np.__version__, "opencv": cv2.__version__},
        "size": [height, width],
        "severity": config.severity if isinstance(config.severity, str) else list(config.severity),
        "severity_px": [round(lo, 4), round(hi, 4)],
        "config": config.to_dict(),
        "photos": [p.name for p in photos],
        "items": items,
    }
    write_text_atomic(out_dir / "synth.json", json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {args.count} pairs ({height}x{width}, severity {args.severity} = {lo:.1f}-{hi:.1f} px) "
          f"to {out_dir}/blur and {out_dir}/sharp; record in {out_dir}/synth.json")
    return 0


def run_split(args: argparse.Namespace) -> int:
    """``deblurrt data split``: print or write the validation photo names. An existing list with other names
    is refused unless ``--overwrite`` (one with the same names is kept); both are checked before either is
    written."""
    from deblurrt.outputs import check_output_file
    from deblurrt.train.data.photos import split_photos

    if not Path(args.photos_dir).is_dir():
        raise DeblurrtError(f"photo folder {args.photos_dir} does not exist. Fix: give a folder of sharp photos")
    train, val = split_photos(args.photos_dir, val_fraction=args.val_fraction, seed=args.seed)
    if args.out is None:
        print("\n".join(p.name for p in val))
        return 0
    out = Path(args.out)
    lists = {out / "train_photos.txt": "".join(f"{p.name}\n" for p in train),
             out / "val_photos.txt": "".join(f"{p.name}\n" for p in val)}
    # A list that already holds exactly these names is kept as it is: the same command run again (a
    # script's retry) loses nothing. Any other existing list is refused without --overwrite. Both are
    # checked before either is written: a refusal of the second must not leave the first replaced (a
    # mismatched pair would hold a photo out of neither or of both).
    changed = {path: text for path, text in lists.items() if not _holds(path, text)}
    for path in changed:
        check_output_file(path, option="--out", overwrite=args.overwrite)
    for path, text in changed.items():
        write_text_atomic(path, text)
    kept = "" if changed else " (unchanged)"
    print(f"{len(train)} training and {len(val)} validation photos: {out}/train_photos.txt, "
          f"{out}/val_photos.txt{kept}")
    return 0


def _holds(path: Path, text: str) -> bool:
    """Whether ``path`` is a file that already holds exactly ``text`` (an unreadable one does not)."""
    try:
        return path.is_file() and path.read_text() == text
    except (OSError, UnicodeDecodeError):
        return False
