"""Crash-safe file writing (a temporary sibling, then an atomic rename) and advisory locks.

Every file avlabel produces goes through `atomic_path`, so an interrupted run never
leaves a half-written output behind (the rename is atomic on POSIX and Windows within one
file system, which is why the temporary file lives in the destination's directory).

Files users pass in are read without running code from them: `load_tensors` is
``torch.load(weights_only=True)`` with one-line errors (see `avlabel.errors.reading`).

Outputs that several processes may write (an audio cache, a flow folder, the embedding cache)
are guarded by `file_lock`: an advisory ``flock`` on a lock file, which the kernel
releases when the last process holding it dies, so a ``kill -9`` never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from avlabel.errors import AvlabelError, reading


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give outputs the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def quiet_torch_loading() -> Iterator[None]:
    """Hide the ``UserWarning``\\ s torch's weights-only unpickler prints (notes on pickle protocols).

    A file it refuses becomes one ``Error:`` line; warnings printed above that line would only
    bury it. Wrap every call that ends in ``torch.load`` (ours, transformers', sentence-transformers').
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\b")
        yield


def load_tensors(path: str | os.PathLike[str], what: str, fix: str) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain values, never pickled code.

    Args:
        path: the file.
        what: the file as the user knows it (``"training state runs/a/checkpoints/last.state.pt"``).
        fix: what to do when it is refused or damaged.
    """
    import torch

    with reading(what, fix, also=(RuntimeError,)), quiet_torch_loading():
        return torch.load(path, map_location="cpu", weights_only=True)


def file_lock(path: str | os.PathLike[str], *, busy: str | None = None, shared: bool = False) -> IO[str]:
    """Open ``path`` (created if needed) and hold an advisory lock on it until the handle is closed.

    Args:
        path: the lock file.
        busy: without it, wait for the lock; with it, fail at once with ``AvlabelError(busy)``
            when another process holds a conflicting lock.
        shared: take a shared lock (compatible with other shared ones, not with exclusive ones).

    Returns:
        The open handle; closing it (or the process ending, however it ends) releases the lock.
        On systems without ``fcntl`` (Windows) the handle is returned without a lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - the caller closes it to release the lock
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, one writer by convention
        return handle
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (fcntl.LOCK_NB if busy is not None else 0)
    try:
        fcntl.flock(handle.fileno(), mode)
    except BlockingIOError:
        handle.close()
        raise AvlabelError(busy) from None
    return handle


@functools.cache
def _umask() -> int:
    # os.umask can only be read by setting it; do that once, not on every write from many threads.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
