"""Checks every command runs on what a user passes, before any work starts.

One helper per question, so that every command asks it the same way and says the same thing:

* `check_output_file` / `check_output_dir`: can this output be written? Asked
  before a benchmark runs or a model loads, not discovered as a ``PermissionError`` traceback
  at the end. The test is a real write (a temporary file created and removed in the nearest
  existing folder), so read-only mounts, ACLs and root's bypass of permission bits all answer
  truthfully.
* `check_input_file`: does this input exist, and is it a file?
* `check_media_exist` and `check_failures`: a long job whose every item fails is
  an error (said before anything is written when no file exists at all); one where many fail
  is a loud warning.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from avlabel.errors import AvlabelError, AvlabelWarning

DEFAULT_WARN_FAILED_SHARE = 0.05  # more than 5% of a job's items failing is worth a loud warning


def check_output_file(path: str | os.PathLike[str], option: str) -> Path:
    """Raise unless a file can be written at ``path`` (its folders are created later as needed).

    Args:
        path: where the output file goes.
        option: how the user passed it (``"-o"``, ``"--output"``), named in the message.
    """
    path = Path(path)
    if path.is_dir():
        raise AvlabelError(f"{option} {path} is a folder; pass a file name inside it, e.g. {path / 'out'}{path.suffix}")
    _check_writable_parent(path, option)
    return path


def check_output_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Raise unless ``path`` is, or can be created as, a folder this process can write in."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AvlabelError(f"{option} {path} is a file, not a folder; pass a folder (it is created if missing)")
    if path.is_dir():
        _probe_write(path, path, option)
    else:
        _check_writable_parent(path, option)
    return path


def check_input_file(path: str | os.PathLike[str], what: str, fix: str) -> Path:
    """Raise unless ``path`` is an existing file (not a folder)."""
    path = Path(path)
    if path.is_dir():
        raise AvlabelError(f"{what} {path} is a folder, not a file; {fix}")
    if not path.is_file():
        raise AvlabelError(f"{what} not found: {path}; {fix}")
    return path


def check_media_exist(records: Sequence, manifest: str | os.PathLike[str] | None) -> None:
    """Raise when not one of ``records``' files exists: every item of the job would fail."""
    if records and not any(Path(record.path).is_file() for record in records):
        example = Path(records[0].path)
        state = "is a folder" if example.is_dir() else "does not exist"
        raise AvlabelError(
            f"none of the {len(records)} videos of {manifest or 'the manifest'} is a file ({example} {state}); "
            "fix the paths in the manifest (relative ones resolve against its folder)"
        )


def check_failures(
    failed: Sequence[tuple[str, str]],
    total: int,
    *,
    what: str,
    listed_in: str | os.PathLike[str],
    warn_share: float = DEFAULT_WARN_FAILED_SHARE,
) -> None:
    """Judge how a long job's items fared: all failed is an error, more than ``warn_share`` a warning.

    Args:
        failed: ``(item, reason)`` of every item that failed.
        total: items the job was asked for (including those an earlier run finished).
        what: the items, plural ("videos").
        listed_in: the file that lists every failure.
        warn_share: warn when more than this share of ``total`` failed.
    """
    if not failed or not total:
        return
    first = "; ".join(f"{item}: {reason}" for item, reason in failed[:2])
    if len(failed) >= total:
        raise AvlabelError(
            f"all {total} {what} failed, e.g. {first}; fix what these reasons name (paths, files) and rerun"
        )
    share = len(failed) / total
    if share > warn_share:
        warnings.warn(
            f"{len(failed)} of {total} {what} ({share:.0%}) failed, more than {warn_share:.0%}; see {listed_in} (e.g. {first})",
            AvlabelWarning,
            stacklevel=2,
        )


def _check_writable_parent(path: Path, option: str) -> None:
    """The nearest existing ancestor of ``path`` must be a folder this process can write in."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise AvlabelError(
            f"{option} {path}: {ancestor} is a file, so no folder can be made under it; choose another path"
        )
    _probe_write(ancestor, path, option)


def _probe_write(folder: Path, path: Path, option: str) -> None:
    try:
        handle, probe = tempfile.mkstemp(prefix=".avlabel-write-check-", dir=folder)
    except OSError as error:
        raise AvlabelError(
            f"{option} {path}: cannot write in {folder} ({error.strerror}); choose another path or fix its permissions"
        ) from None
    os.close(handle)
    os.unlink(probe)
