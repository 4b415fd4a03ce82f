"""Shared fixtures. Every test gets its own avlabel cache directory so runs never interfere."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AVLABEL_CACHE_DIR", str(tmp_path_factory.mktemp("avlabel-cache")))
