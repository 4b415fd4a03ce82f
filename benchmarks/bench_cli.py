"""Wall-clock figures for the label-dictionary commands (issue 2's speed targets).

    python benchmarks/bench_cli.py [--repeat 3]

Each command runs in a fresh process, exactly as a user types it. ``savld`` runs cold (empty
embedding cache: model import, load and encoding included) and warm (second run on the same
cache). Targets: ``--help`` and ``inspect`` < 0.5 s, ``savld`` < 10 s cold and < 1 s warm on a
2-core machine. Prints one line per command with the best and median of the repeats (seconds), and the best CPU time (user + system), which shows the
cost on a busy machine where wall time mostly measures waiting for a core.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SAVLD = ["savld", "--video", "kinetics400", "--audio", "audioset", "--k", "10", "--metric", "cosine"]


def _command() -> list[str]:
    # The installed console script is what users run; fall back to the module in a checkout.
    script = shutil.which("avlabel")
    return [script] if script else [sys.executable, "-m", "avlabel"]


def _time(args: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """(wall, cpu) seconds of one run; CPU time (user + system) is what a busy machine inflates least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*_command(), *args], env=env, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (default 3)")
    options = parser.parse_args()
    rows: list[tuple[str, list[tuple[float, float]], float]] = []
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "AVLABEL_CACHE_DIR": os.path.join(work, "cache")}
        rows.append(("avlabel --help", [_time(["--help"], env, work) for _ in range(options.repeat)], 0.5))
        rows.append(
            ("avlabel inspect dancing", [_time(["inspect", "dancing"], env, work) for _ in range(options.repeat)], 0.5)
        )
        cold, warm = [], []
        for run in range(options.repeat):
            env["AVLABEL_CACHE_DIR"] = os.path.join(work, f"cache-{run}")
            cold.append(_time([*SAVLD, "-o", "cold.json"], env, work))
            warm.append(_time([*SAVLD, "-o", "warm.json"], env, work))
        rows.append(("avlabel savld (cold cache)", cold, 10.0))
        rows.append(("avlabel savld (warm cache)", warm, 1.0))
    print(
        f"{'command':<28} {'wall best':>9} {'wall median':>11} {'cpu best':>9} {'target':>7}  (cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f})"
    )
    for name, times, target in rows:
        walls, cpus = [wall for wall, _ in times], [cpu for _, cpu in times]
        best = min(walls)
        print(
            f"{name:<28} {best:9.2f} {statistics.median(walls):11.2f} {min(cpus):9.2f} {target:7.1f}  {'ok' if best < target else 'OVER'}"
        )


if __name__ == "__main__":
    main()
