"""Find and parse label vocabularies: the shipped ``data_labels/`` files or a user's own file.

Shipped sets live in ``data_labels/`` at the repository root and are copied into the wheel as
``avlabel/data_labels`` (see ``pyproject.toml``); `shipped_dir` looks in the installed
location first and falls back to the source tree, so a plain ``pip install .`` and an editable
checkout behave the same. ``data_labels/README.md`` records where every file comes from.

User files, accepted anywhere a set name is:

* ``.txt``: one label per line, line ``i`` is class ``i``. A UCF-style ``classInd.txt``
  (``"1 ApplyEyeMakeup"``: every line a number then a label, numbered consecutively from 0 or 1)
  is recognised and the numbers are dropped.
* ``.csv``: a header with a ``display_name`` or ``label`` column; optional ``mid``/``id``
  (machine ids) and ``index`` (class index; rows are put in index order) columns.
* ``.json``: a list of strings.
"""

from __future__ import annotations

import csv
import io
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path

from avlabel.errors import AvlabelError, reading
from avlabel.labels.label_set import LabelSet

LABEL_FILE_SUFFIXES = (".txt", ".csv", ".json")
_CLASS_IND_LINE = re.compile(r"^(\d+)\s+(\S.*)$")


def shipped_dir() -> Path:
    """Directory holding the shipped label files (installed wheel first, then source tree)."""
    installed = resources.files("avlabel") / "data_labels"
    if installed.is_dir():
        return Path(str(installed))
    source_tree = Path(__file__).resolve().parents[2] / "data_labels"
    if source_tree.is_dir():
        return source_tree
    raise AvlabelError(
        "the shipped label files (data_labels/) are missing from this avlabel install; reinstall with 'pip install avlabel'"
    )


def _shipped_files() -> dict[str, Path]:
    return {
        path.stem: path
        for path in sorted(shipped_dir().iterdir())
        if path.is_file() and path.suffix in (".txt", ".csv")
    }


def _canonical_name(name: str) -> str:
    """ "Kinetics-400", "ucf_101" and "ESC50" all name the shipped files kinetics400/ucf101/esc50."""
    return re.sub(r"[\s_\-]", "", name.casefold())


def list_label_sets() -> dict[str, int]:
    """Shipped label-set name -> number of classes."""
    return {name: len(load_label_set(name)) for name in _shipped_files()}


def load_label_set(name_or_path: str | Path) -> LabelSet:
    """A shipped label set by name (``"kinetics400"``) or a user label file by path.

    Raises:
        AvlabelError: unknown name, missing/empty/unparsable file, duplicate labels.
    """
    if isinstance(name_or_path, Path):
        return _load_file(name_or_path.resolve())
    text = str(name_or_path).strip()
    shipped = _shipped_files()
    canonical = _canonical_name(text)
    for name, path in shipped.items():
        if _canonical_name(name) == canonical:
            return _load_shipped(name, path)
    candidate = Path(text).expanduser()
    if candidate.suffix.lower() in LABEL_FILE_SUFFIXES or "/" in text or "\\" in text or candidate.exists():
        return _load_file(candidate.resolve())
    raise AvlabelError(
        f"unknown label set '{text}'; choose one of {', '.join(shipped)} "
        f"or pass a label file ({', '.join(LABEL_FILE_SUFFIXES)})"
    )


@cache
def _load_shipped(name: str, path: Path) -> LabelSet:
    return _parse(path, name)


def _load_file(path: Path) -> LabelSet:
    if not path.exists():
        raise AvlabelError(f"label file '{path}' does not exist; pass an existing .txt, .csv or .json file")
    if not path.is_file():
        raise AvlabelError(f"label file '{path}' is not a file; pass a .txt, .csv or .json file")
    return _parse(path, path.stem)


def _parse(path: Path, name: str) -> LabelSet:
    suffix = path.suffix.lower()
    if suffix not in LABEL_FILE_SUFFIXES:
        raise AvlabelError(f"label file '{path}' has an unsupported type '{suffix}'; use .txt, .csv or .json")
    with reading(f"label file '{path}'", "pass a UTF-8 text file"):
        # utf-8-sig drops a byte-order mark that spreadsheet exports add.
        text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise AvlabelError(f"label file '{path}' is empty; put one label per line")
    if suffix == ".txt":
        labels, ids = _parse_txt(text), None
    elif suffix == ".csv":
        labels, ids = _parse_csv(text, path)
    else:
        labels, ids = _parse_json(text, path), None
    return LabelSet(name=name, labels=tuple(labels), ids=None if ids is None else tuple(ids))


def _parse_txt(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    matches = [_CLASS_IND_LINE.match(line) for line in lines]
    if all(matches):
        numbers = [int(m.group(1)) for m in matches]
        if numbers in (list(range(len(lines))), list(range(1, len(lines) + 1))):
            return [m.group(2).strip() for m in matches]
    return lines


def _parse_csv(text: str, path: Path) -> tuple[list[str], list[str] | None]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    label_column = next((c for c in ("display_name", "label") if c in columns), None)
    if label_column is None:
        raise AvlabelError(
            f"label file '{path}' has no 'display_name' or 'label' column (columns: {', '.join(columns)}); add one"
        )
    id_column = next((c for c in ("mid", "id") if c in columns), None)
    rows = list(reader)
    if not rows:
        raise AvlabelError(f"label file '{path}' has a header but no rows; add one row per label")
    if "index" in columns:
        try:
            order = [int(row["index"]) for row in rows]
        except (TypeError, ValueError) as error:
            raise AvlabelError(f"label file '{path}' has a non-integer 'index' value; use 0..N-1") from error
        if sorted(order) != list(range(len(rows))):
            raise AvlabelError(f"label file '{path}': the 'index' column must hold each of 0..{len(rows) - 1} once")
        rows = [row for _, row in sorted(zip(order, rows), key=lambda pair: pair[0])]
    labels = [(row[label_column] or "").strip() for row in rows]
    ids = [(row[id_column] or "").strip() for row in rows] if id_column else None
    return labels, ids


def _parse_json(text: str, path: Path) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise AvlabelError(f"label file '{path}' is not valid JSON ({error.msg} at line {error.lineno})") from error
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise AvlabelError(f"label file '{path}' must hold a JSON list of label strings")
    return [item.strip() for item in data]
