"""What a run records: metrics.jsonl, TensorBoard events and environment.json.

Only the main process creates a `RunLog`. ``metrics.jsonl`` holds one JSON object per
line (``{"kind": "train"|"val", "epoch", "step", "loss", ...}``); each numeric field also goes
to TensorBoard as ``{kind}/{field}`` at the record's step. On resume both are cut back to the
checkpoint's step (TensorBoard through ``purge_step``), so a run that was killed and resumed
reads exactly like one that never stopped.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from avlabel._io import atomic_write_json, atomic_write_text
from avlabel.errors import reading

METRICS_FILE = "metrics.jsonl"
ENVIRONMENT_FILE = "environment.json"
TENSORBOARD_DIR = "tb"
_PACKAGES = ("avlabel", "torch", "timm", "transformers", "numpy", "av", "opencv-python-headless", "safetensors")


class RunLog:
    """Appends metric records to ``metrics.jsonl`` and TensorBoard.

    Args:
        run_dir: the run directory.
        resume_step: the step training resumes after; records of later steps (written by the
            interrupted run after its last checkpoint) are dropped. None: a fresh run, any old
            metrics are discarded.
    """

    def __init__(self, run_dir: Path, resume_step: int | None):
        from torch.utils.tensorboard import SummaryWriter

        self.path = run_dir / METRICS_FILE
        kept = _records_up_to(self.path, resume_step) if resume_step is not None else []
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        purge = resume_step + 1 if resume_step is not None else None
        self._writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=purge)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (must hold ``kind`` and ``step``); NaN/inf are written as null."""
        clean = {
            key: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for key, value in record.items()
        }
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        for key, value in clean.items():
            if (
                key not in ("kind", "step", "epoch", "time")
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
            ):
                self._writer.add_scalar(f"{record['kind']}/{key}", value, global_step=record["step"])
        self._writer.flush()

    def close(self) -> None:
        self._file.close()
        self._writer.close()


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a run's ``metrics.jsonl`` (an empty list when there is none)."""
    return _records_up_to(Path(run_dir) / METRICS_FILE, None)


def _records_up_to(path: Path, step: int | None) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    with reading(f"training log {path}", "repair the damaged lines or delete the file"):
        text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        if step is None or record.get("step", 0) <= step:
            records.append(record)
    return records


def write_environment(run_dir: Path, *, device: str, world_size: int, extra: dict[str, Any] | None = None) -> None:
    """Record what produced the run: git commit, package versions, hardware and command line."""
    import torch

    environment = {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": _command_line(),
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": _git_state(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "device": device,
        "device_name": torch.cuda.get_device_name(torch.device(device))
        if device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "world_size": world_size,
        **(extra or {}),
    }
    atomic_write_json(run_dir / ENVIRONMENT_FILE, environment)


def _command_line() -> list[str]:
    # `python -m avlabel` and `torchrun -m avlabel` leave avlabel/__main__.py in argv[0].
    program = Path(sys.argv[0])
    head = ["python", "-m", "avlabel"] if program.name == "__main__.py" else [program.name]
    return [*head, *sys.argv[1:]]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        if package == "avlabel":
            from avlabel import __version__

            return __version__
        return None


def _git_state() -> dict[str, Any] | None:
    """The commit of the avlabel source tree in use (None for an installed wheel)."""
    source = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


class Throughput:
    """Clips per second over the steps since the last call."""

    def __init__(self):
        self._time = time.perf_counter()
        self._clips = 0

    def add(self, clips: int) -> None:
        self._clips += clips

    def rate(self) -> float:
        now = time.perf_counter()
        rate = self._clips / max(now - self._time, 1e-9)
        self._time, self._clips = now, 0
        return rate
