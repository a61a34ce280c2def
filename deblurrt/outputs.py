"""Where outputs go: checked before the long work starts, written atomically, failures as one-line errors.

Every command that writes files follows the same rules, so that nothing is lost and nothing is overwritten
by surprise:

- an existing output is refused unless ``--overwrite`` is given (the commands say so in their help);
- an output that is an input (the same file or folder, also through symlinks, hard links or ``./`` forms),
  and an output folder that contains an input, are always refused;
- before any slow work each output location is checked: a folder that is a file, a parent that is a file,
  a folder this process cannot write to;
- files are written under a temporary name in the same folder and renamed when complete, the temporary
  file is removed when the write fails or is interrupted;
- a failed write (disk full, file-size limit, read-only file system, permission) becomes an
  :class:`OutputError` naming the path, the reason and a fix, never a traceback.

Only the standard library is imported here: the runtime (torch-free) uses it too.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deblurrt.errors import DeblurrtError

try:
    import resource  # POSIX: the file-size limit (ulimit -f) explains some failed writes
except ImportError:  # Windows
    resource = None

#: the fix appended to every "could not write" error
WRITE_FIX = "Fix: free space, or choose a writable location with room (another disk or folder)"


class OutputError(DeblurrtError):
    """An output location is unusable (exists, is an input, is a file, not writable) or a write failed."""


_REASONS = {
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file-size limit of this process was reached (ulimit -f)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENOENT: "the folder does not exist",
    errno.EIO: "an I/O error (the device failed or went away)",
}


def os_reason(error: OSError) -> str:
    """A short human reason for an ``OSError`` (``ENOSPC`` -> "no space left on the device ...")."""
    return _REASONS.get(error.errno, error.strerror or str(error))


def write_failure_reason(path: str | os.PathLike) -> str:
    """Why a write to ``path`` probably failed when the writer (OpenCV) did not say: the file-size limit, a
    full disk, or, when neither shows, the possible causes."""
    path = Path(path)
    soft_limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else None
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if soft_limit is not None and soft_limit != resource.RLIM_INFINITY and size >= soft_limit:
        return f"the file-size limit of this process ({soft_limit} bytes, ulimit -f) was reached"
    try:
        free = shutil.disk_usage(_nearest_existing(path.parent)).free
    except OSError:
        free = None
    if free is not None and free < 1 << 20:
        return f"the disk is full ({free} bytes free)"
    return "the writer reported a failure (disk full, quota, or the device went away)"


# --------------------------------------------------------------------------------------------- checks

def _real(path: str | os.PathLike) -> Path:
    """``path`` with symlinks, ``..`` and ``./`` resolved (also for paths that do not exist yet)."""
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _same(a: Path, b: Path) -> bool:
    if _real(a) == _real(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _inside(child: Path, folder: Path) -> bool:
    """Whether ``child`` is ``folder`` or lies anywhere below it (resolved paths)."""
    child, folder = _real(child), _real(folder)
    return child == folder or folder in child.parents


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest existing ancestor."""
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_parent(path: Path, option: str) -> None:
    """The folder ``path`` goes into exists or can be created, and this process can write there."""
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise OutputError(f"{option} {path}: {ancestor} is a file, not a folder, so nothing can be written "
                          "under it. Fix: choose a path inside a folder")
    probe_writable(ancestor, option=f"{option} {path}")


def probe_writable(folder: Path, *, option: str = "output") -> None:
    """Create and remove a small file in ``folder``: proves it is writable by this process (also as root,
    where permission bits say nothing; a read-only file system or a full quota shows here)."""
    try:
        handle, name = tempfile.mkstemp(prefix=".deblurrt-probe-", dir=folder)
    except OSError as error:
        raise OutputError(f"{option}: cannot write in {folder}: {os_reason(error)}. Fix: choose a folder you "
                          "can write to") from error
    os.close(handle)
    os.unlink(name)


def check_not_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], *,
                    option: str = "output", protected: Iterable[str | os.PathLike | None] = ()) -> None:
    """Refuse an output that is one of ``inputs`` (same file or folder, through symlinks and hard links
    too) or a folder that contains one of them: writing there could destroy the input. ``protected`` paths
    (the model, the other outputs of the same run) are refused only when the output is the same file."""
    output = Path(os.path.expanduser(os.fspath(output)))
    for item in protected:
        if item is not None and _same(output, Path(os.path.expanduser(os.fspath(item)))):
            raise OutputError(f"{option} {output} is also {item}, which this command reads or writes. Fix: give "
                              "each output its own path")
    for item in inputs:
        if item is None:
            continue
        source = Path(os.path.expanduser(os.fspath(item)))
        if _same(output, source):
            raise OutputError(f"{option} {output} is the input {source}: writing it would destroy the input. "
                              "Fix: write to another file or folder")
        if output.is_dir() and source.exists() and _inside(source, output) and not source.is_dir():
            raise OutputError(f"{option} {output} is a folder that contains the input {source}: outputs "
                              "written there could replace input files. Fix: write to a folder outside the input")
        if source.is_dir() and _inside(source, output):
            raise OutputError(f"{option} {output} contains the input folder {source}: outputs written there "
                              "could replace input files. Fix: write to a folder outside the input")


def check_output_file(path: str | os.PathLike, *, option: str, overwrite: bool = False,
                      inputs: Iterable[str | os.PathLike | None] = (),
                      protected: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Check, before any work, that ``path`` can be written as a file: not a folder, not an input, not an
    existing file (unless ``overwrite``), in a folder that is (or can be) created and is writable.
    Returns the path (``~`` expanded)."""
    path = Path(os.path.expanduser(os.fspath(path)))
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder. Fix: give a file name (e.g. {path / 'out'}...)")
    check_not_input(path, inputs, option=option, protected=protected)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputError(f"{option} {path} already exists. Fix: choose another name, or add --overwrite to "
                          "replace it")
    _check_parent(path, option)
    return path


def check_output_folder(path: str | os.PathLike, *, option: str, overwrite: bool = False,
                        inputs: Iterable[str | os.PathLike | None] = (),
                        protected: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Check, before any work, that ``path`` can be used as an output folder: not a file, not an input and
    containing none, empty or absent (unless ``overwrite``: files with the same names are then replaced,
    others kept), and writable. Returns the path (``~`` expanded)."""
    path = Path(os.path.expanduser(os.fspath(path)))
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file, not a folder. Fix: give a folder (new or empty)")
    check_not_input(path, inputs, option=option, protected=protected)
    if path.is_dir():
        entries = [entry for entry in path.iterdir() if not entry.name.startswith(".deblurrt-probe-")]
        if entries and not overwrite:
            raise OutputError(f"{option} {path} already holds {len(entries)} file(s). Fix: choose a new or empty "
                              "folder, or add --overwrite (files with the same names are replaced, others kept)")
        probe_writable(path, option=f"{option} {path}")
    else:
        _check_parent(path / "x", option)
    return path


# --------------------------------------------------------------------------------------------- writing

def temporary_name(path: Path) -> Path:
    """The temporary sibling a file is written to before its rename: ``.NAME.tmpPID.SUFFIX`` (the suffix is
    kept so that writers that choose a format from it, OpenCV and matplotlib, still do)."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike, *, what: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` when the block succeeds. On any
    failure or interruption the temporary file is removed; an ``OSError`` becomes an :class:`OutputError`
    naming ``path``. Missing parent folders are created."""
    path = Path(path)
    label = what or str(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the folder of {label}: {os_reason(error)}. Fix: choose a writable "
                          "location") from error
    temporary = temporary_name(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        raise OutputError(f"cannot write {label}: {os_reason(error)}. {WRITE_FIX}") from error
    finally:
        try:
            temporary.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass  # the folder went away or became read-only: nothing more can be done about it here


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, what: str | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns the path."""
    path = Path(path)
    with atomic_path(path, what=what) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
    return path


def write_text_atomic(path: str | os.PathLike, text: str, *, what: str | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_bytes_atomic(path, text.encode("utf-8"), what=what)


def write_json_atomic(path: str | os.PathLike, data: Any, *, what: str | None = None) -> Path:
    """Write ``data`` as indented strict JSON (no NaN) to ``path`` atomically; returns the path."""
    return write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n", what=what)


def copy_file_atomic(source: str | os.PathLike, path: str | os.PathLike, *, what: str | None = None) -> Path:
    """Copy ``source`` to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path, what=what) as temporary:
        shutil.copyfile(source, temporary)
    return path
