"""Two CPU processes with gloo through torchrun: identical replicas, same math as one process, clean teardown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avlabel._io import atomic_write_text
from avlabel.train.checkpoint import load_run, weights_sha256
from avlabel.train.config import dump_config, load_config
from avlabel.train.loop import train

from .conftest import tiny_overrides, torchrun_two_ranks


def test_two_gloo_ranks_end_identical_and_match_one_process_with_accumulation(synth_bench, tmp_path, one_thread):
    # Global batch 16: 2 ranks x 8 clips, or 1 process x 8 clips x 2 accumulation steps. SGD,
    # not Adam: Adam would hide a wrongly scaled gradient (it normalises the scale away).
    overrides = tiny_overrides(
        synth_bench, schedule__epochs=1, optim__name="sgd", optim__lr=0.05, optim__weight_decay=1e-4
    )
    config_path = tmp_path / "tiny.yaml"
    atomic_write_text(config_path, dump_config(load_config(None, overrides)))
    finished = torchrun_two_ranks(
        "-m", "avlabel", "train", "--config", str(config_path), "--out", str(tmp_path / "ddp")
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("finished: 3 steps") == 1  # only rank 0 reports

    # Every rank hashed its own final weights; rank 0 gathered the hashes over gloo.
    replicas = json.loads((tmp_path / "ddp/replicas.json").read_text())
    assert replicas["world_size"] == 2 and len(replicas["weights_sha256"]) == 2
    assert replicas["weights_sha256"][0] == replicas["weights_sha256"][1]
    ddp_weights = load_run(tmp_path / "ddp", "last").model.state_dict()
    assert weights_sha256(ddp_weights) == replicas["weights_sha256"][0]
    environment = json.loads((tmp_path / "ddp/environment.json").read_text())
    assert environment["world_size"] == 2 and environment["accum_steps"] == 1

    # The same global batches in one process (2 accumulation steps of 8) give the same weights
    # up to float summation order: DDP averages what accumulation sums / 2.
    single = train(load_config(None, overrides), tmp_path / "single")
    assert single.step == 3
    single_weights = load_run(tmp_path / "single", "last").model.state_dict()
    for name, tensor in ddp_weights.items():
        torch.testing.assert_close(single_weights[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


_TEARDOWN_SCRIPT = """
import json
import os
import sys
import torch
from torch.nn.parallel import DistributedDataParallel
from avlabel.train.distributed import setup_distributed, teardown_distributed

ctx = setup_distributed("cpu")
model = DistributedDataParallel(torch.nn.Linear(3, 2))
model(torch.randn(4, 3)).sum().backward()
del model
teardown_distributed()
names = sorted(open(f"/proc/self/task/{task}/comm").read().strip() for task in os.listdir("/proc/self/task"))
# One file per rank: the ranks share torchrun's stdout, where their lines can interleave.
with open(os.path.join(sys.argv[1], f"threads-rank{ctx.rank}.json"), "w") as handle:
    json.dump(names, handle)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="lists threads through Linux's /proc")
def test_teardown_after_ddp_leaves_no_gloo_thread_running(tmp_path):
    # gloo threads that outlive teardown run into interpreter shutdown, which aborted a rank.
    script = tmp_path / "teardown.py"
    script.write_text(_TEARDOWN_SCRIPT)
    finished = torchrun_two_ranks(str(script), str(tmp_path))
    assert finished.returncode == 0, finished.stderr[-3000:]
    threads = {rank: json.loads((tmp_path / f"threads-rank{rank}.json").read_text()) for rank in (0, 1)}
    assert not any("gloo" in name for names in threads.values() for name in names), threads
