"""``avlabel train``: argument handling and the one-line errors users see (exit status 2).

A full CLI run, through torchrun with two processes, is in tests/train/test_distributed.py.
"""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from avlabel.cli import cli


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        f"data:\n  manifest: {tmp_path / 'missing.csv'}\naudio:\n  cache: {tmp_path / 'audio'}\nruntime:\n  device: cpu\n"
    )
    return path


def _run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_help_shows_the_options():
    result = _run("train", "--help")
    assert result.exit_code == 0
    for option in ("--config", "--set", "--out", "--resume", "--force"):
        assert option in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "optim.lrr=1"], "Error: unknown config key 'optim.lrr'; did you mean 'optim.lr'?"),
        (["--set", "optim.lr"], "Error: --set 'optim.lr': expected KEY=VALUE"),
        (["--set", "data.frames=many"], "Error: data.frames: expected int, got str 'many'"),
        ([], "Error: data.manifest: manifest not found: "),
    ],
)
def test_bad_arguments_exit_2_with_one_line(config_file, args, message):
    result = _run("train", "--config", config_file, *args, "--out", config_file.parent / "run")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [([], "Error: --config is required"), (["--config", "nope.yaml"], "Error: config file nope.yaml not found")],
)
def test_missing_config(args, message, tmp_path):
    result = _run("train", *args, "--out", tmp_path / "run")
    assert result.exit_code == 2 and message in result.output


def test_run_directory_guards(config_file, tmp_path):
    run = tmp_path / "run"
    result = _run("train", "--resume", "--out", run)
    assert result.exit_code == 2 and f"no config.yaml in {run} to resume with" in result.output
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints/last.safetensors").write_bytes(b"")
    result = _run("train", "--config", config_file, "--out", run)
    assert result.exit_code == 2 and "already holds a run (last.safetensors); pass --resume" in result.output
    # --resume PATH without --out continues in the run directory PATH belongs to.
    result = _run("train", "--resume", run / "checkpoints/last.safetensors")
    assert result.exit_code == 2 and f"no config.yaml in {run} to resume with" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_global_device_option_reaches_the_config(config_file, tmp_path):
    result = CliRunner().invoke(
        cli, ["--device", "cuda", "train", "--config", str(config_file), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "runtime.device is 'cuda' but no CUDA GPU is visible" in result.output
