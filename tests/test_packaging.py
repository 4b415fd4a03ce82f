"""A real wheel ships the label vocabularies, and an installed (non-editable) copy works from
any directory: `pip install .` followed by `avlabel savld` elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = (
    "audioset.csv",
    "kinetics400.txt",
    "kinetics600.txt",
    "kinetics700.txt",
    "ucf101.txt",
    "hmdb51.txt",
    "vggsound.txt",
    "esc50.txt",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (pip install hatchling)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("avlabel-*.whl")
    return built


def test_wheel_contains_every_label_file_and_the_default_dictionary(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in SHIPPED:
        assert f"avlabel/data_labels/{shipped}" in names
    assert "avlabel/data_labels/savld/kinetics400-audioset-bert-k10-cosine.txt" in names
    assert not any(name.startswith("tests/") for name in names)
    # The shipped bytes are exactly the repository's.
    archive = zipfile.ZipFile(wheel)
    assert archive.read("avlabel/data_labels/audioset.csv") == (REPO / "data_labels" / "audioset.csv").read_bytes()


@pytest.mark.slow
def test_installed_wheel_runs_from_another_directory(wheel, tmp_path):
    environment = tmp_path / "venv"
    # System site-packages provide torch & co.; only avlabel itself comes from the wheel.
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(environment)
    python = environment / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--force-reinstall",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {**os.environ, "AVLABEL_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": ""}

    def avlabel(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(environment / "bin" / "avlabel"), *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    where = subprocess.run(
        [str(python), "-c", "import avlabel; print(avlabel.__file__)"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert str(environment) in where.stdout, f"the wheel's copy must be the one imported: {where.stdout}{where.stderr}"

    listing = avlabel("labels")
    assert listing.returncode == 0, listing.stderr
    assert "audioset" in listing.stdout and "527" in listing.stdout
    built = avlabel(
        "--device",
        "cpu",
        "savld",
        "--video",
        "ucf101",
        "--audio",
        "esc50",
        "--k",
        "3",
        "--metric",
        "cosine",
        "-o",
        "d.json",
    )
    assert built.returncode == 0, built.stderr
    assert (workdir / "d.json").is_file()
    inspected = avlabel("inspect", "playing drums")
    assert inspected.returncode == 0 and "Drum" in inspected.stdout
