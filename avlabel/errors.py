"""The one exception type for expected user errors, the one warning type, and the one place
that turns the exceptions of reading a user's file into that error.

Core functions raise `AvlabelError` with a message that names the problem *and* the fix
("unknown label set 'kinetic400'; choose one of ..."). The CLI prints it on one line and exits
with status 2, without a traceback. Internal invariants use ``assert`` instead.

Problems that do not stop a job (most of a long job's items failed, a cache too old to be
checked) are `AvlabelWarning`\\ s: library users see them through `warnings`, the CLI
prints each on one ``Warning:`` line.
"""

from __future__ import annotations

import contextlib
import csv
import json
import pickle
import re
import zipfile
from collections.abc import Iterator


class AvlabelError(Exception):
    """An error caused by the user's input, with an actionable one-line message."""


class AvlabelWarning(UserWarning):
    """Something the user should know about a job that still completes, in one line."""


@contextlib.contextmanager
def reading(what: str, fix: str, also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn what reading a user's file raises into one `AvlabelError`.

    ``"cannot read {what}: {reason}; {fix}"`` for text that is not UTF-8, unreadable or damaged
    files, malformed CSV/JSON/zip data; ``"refused to load {what}: ..."`` for a pickle that asks
    for Python objects beyond tensors (loading it could run code). ``also`` adds exception types a
    particular reader raises for a damaged file (``RuntimeError`` for torch archives).

    Args:
        what: the file as the user knows it, e.g. ``"tags file /data/tags.csv"``.
        fix: what to do about it, e.g. ``"save it as UTF-8 CSV"``.
    """
    try:
        yield
    except AvlabelError:
        raise
    except UnicodeDecodeError as error:
        raise AvlabelError(
            f"cannot read {what}: it is not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start}); {fix}"
        ) from None
    except pickle.UnpicklingError as error:
        # torch's message is paragraphs about its defaults; the line naming the refused global (or
        # the opcode its weights-only unpickler stopped at) is the fact.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        refused = re.search(r"GLOBAL ([\w.]+)", str(error))
        if refused is not None:
            raise AvlabelError(
                f"refused to load {what}: it holds pickled Python objects, not only tensors, and loading them could run "
                f"code (it asks for {refused.group(1)}); {fix}"
            ) from None
        detail = next(
            (line for line in lines if line.startswith("Unsupported") or "load key" in line), lines[-1] if lines else ""
        )
        raise AvlabelError(
            f"cannot read {what}: it is damaged, or a pickle that only loads by running code ({detail}); {fix}"
        ) from None
    except json.JSONDecodeError as error:
        raise AvlabelError(
            f"cannot read {what}: it is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); {fix}"
        ) from None
    except (OSError, EOFError, ValueError, csv.Error, zipfile.BadZipFile, *also) as error:
        # ValueError also covers numpy's format errors.
        reason = error.strerror if isinstance(error, OSError) and error.strerror else _first_line(error)
        raise AvlabelError(f"cannot read {what}: {reason}; {fix}") from None


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
