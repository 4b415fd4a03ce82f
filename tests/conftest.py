"""Shared fixtures. Every test gets its own avlabel cache directory so runs never interfere, and runs
outside any launcher: a suite started inside a Slurm array task or by torchrun would otherwise have
`avlabel flow` and `avlabel targets` compute one shard of each test's manifest (tests of the
launchers set the variables themselves)."""

from __future__ import annotations

import pytest

_LAUNCHER_VARIABLES = (
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AVLABEL_CACHE_DIR", str(tmp_path_factory.mktemp("avlabel-cache")))


@pytest.fixture(autouse=True)
def _outside_launchers(monkeypatch):
    for name in _LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
