"""An ordered label vocabulary: class ``i`` of a dataset is ``labels[i]``.

Everything downstream (SAVLD rows, relevance targets, classifier heads, checkpoints) refers to
classes by position, so a `LabelSet` is immutable and carries a content hash that
checkpoints and dictionaries record to detect a mismatched vocabulary early.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from avlabel.errors import AvlabelError


def _lookup_key(label: str) -> str:
    """Case- and whitespace-insensitive form used for forgiving look-ups ("Playing  Drums")."""
    return " ".join(label.casefold().split())


@dataclass(frozen=True)
class LabelSet:
    """A dataset's class names in canonical class-index order.

    Args:
        name: Shipped set name (``"kinetics400"``, ``"audioset"``) or the stem of a user file.
        labels: Class names; ``labels[i]`` is class ``i``.
        ids: Stable machine ids in the same order when the dataset has them (AudioSet MIDs).
    """

    name: str
    labels: tuple[str, ...]
    ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # Coerce lists so callers may pass any sequence while the set stays hashable.
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.ids is not None:
            object.__setattr__(self, "ids", tuple(self.ids))
        if not self.labels:
            raise AvlabelError(f"label set '{self.name}' is empty; give at least one label")
        blank = [i for i, label in enumerate(self.labels) if not label.strip()]
        if blank:
            raise AvlabelError(f"label set '{self.name}' has an empty label at index {blank[0]}; remove it")
        # Tabs and line breaks would corrupt the tab-separated SAVLD text format and CSV manifests.
        broken = [i for i, label in enumerate(self.labels) if any(c in label for c in "\t\n\r")]
        if broken:
            raise AvlabelError(f"label set '{self.name}' has a tab or line break inside label {broken[0]}; remove it")
        seen: dict[str, int] = {}
        for i, label in enumerate(self.labels):
            if label in seen:
                raise AvlabelError(
                    f"label set '{self.name}' has duplicate label '{label}' (indices {seen[label]} and {i}); "
                    "each class must appear exactly once"
                )
            seen[label] = i
        if self.ids is not None and len(self.ids) != len(self.labels):
            raise AvlabelError(
                f"label set '{self.name}' has {len(self.ids)} ids for {len(self.labels)} labels; give one id per label"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[str]:
        return iter(self.labels)

    def __contains__(self, label: object) -> bool:
        if not isinstance(label, str):
            return False
        return label in self._exact or self._loose.get(_lookup_key(label)) is not None

    @cached_property
    def _exact(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @cached_property
    def _loose(self) -> dict[str, int | None]:
        # None marks a key shared by labels differing only in case/spacing: ambiguous.
        loose: dict[str, int | None] = {}
        for i, label in enumerate(self.labels):
            key = _lookup_key(label)
            loose[key] = None if key in loose else i
        return loose

    def index(self, label: str) -> int:
        """Class index of ``label``: exact match first, then case/whitespace-insensitive.

        Raises:
            AvlabelError: unknown or ambiguous label, with "did you mean" suggestions.
        """
        exact = self._exact.get(label)
        if exact is not None:
            return exact
        key = _lookup_key(label)
        if key in self._loose:
            found = self._loose[key]
            if found is None:
                matches = [lab for lab in self.labels if _lookup_key(lab) == key]
                raise AvlabelError(
                    f"'{label}' is ambiguous in {self.name}: {', '.join(repr(m) for m in matches)}; give the exact spelling"
                )
            return found
        raise AvlabelError(f"unknown label '{label}' in {self.name}{self._suggestion(label)}")

    def _suggestion(self, label: str) -> str:
        by_key = {_lookup_key(lab): lab for lab in self.labels}
        close = difflib.get_close_matches(_lookup_key(label), list(by_key), n=5, cutoff=0.6)
        if not close:
            # Substring hits catch "drums" -> "playing drums" where edit distance is large.
            key = _lookup_key(label)
            close = [k for k in by_key if key in k][:5]
        if not close:
            return f"; run 'avlabel labels {self.name}' to list its {len(self)} labels"
        return "; did you mean " + ", ".join(repr(by_key[k]) for k in close) + "?"

    @cached_property
    def sha256(self) -> str:
        """Hash of the ordered labels: equal hashes mean identical class-index layouts."""
        return hashlib.sha256("\n".join(self.labels).encode("utf-8")).hexdigest()
