"""Where avlabel keeps caches (embeddings, decoded label sets): ``$AVLABEL_CACHE_DIR``,
else ``$XDG_CACHE_HOME/avlabel``, else ``~/.cache/avlabel``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user's avlabel cache directory (created on first use by the callers that write)."""
    explicit = os.environ.get("AVLABEL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "avlabel"
