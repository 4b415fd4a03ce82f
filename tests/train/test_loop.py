"""End-to-end training on the synthetic benchmark: learning, exact resume, NaN stop, resume guards."""

from __future__ import annotations

import json
import math

import pytest
import torch

from avlabel.errors import AvlabelError
from avlabel.train import loop
from avlabel.train.checkpoint import load_run
from avlabel.train.config import load_config
from avlabel.train.loop import train
from avlabel.train.runlog import read_metrics

from .conftest import tiny_overrides


def test_training_beats_chance_on_the_synthetic_benchmark(synth_bench, tmp_path, one_thread):
    # 36 steps of 8 clips, RGB + flow + audio, IMD with intra-class augmentation. lambda = 0.1:
    # at this tiny width the relevance loss at weight 1 pulls the shared audio features towards
    # "relevant or not" and the classifier stalls at two of the four classes for dozens of steps.
    config = load_config(
        None,
        tiny_overrides(
            synth_bench,
            schedule__epochs=6,
            schedule__val_every=3,
            optim__global_batch=8,
            imd__relevance_weight=0.1,
        ),
    )
    result = train(config, tmp_path / "run")

    val = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "val"]
    train_records = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert [r["epoch"] for r in val] == [2, 5] and len(train_records) == 36
    # 32 validation clips of 4 classes: chance is 25% (P(>= 50%) by luck is 0.1%); seeds 0-2
    # reach 72-81% here.
    assert result.best_top1 >= 0.5, [round(r["top1"], 3) for r in val]
    assert val[-1]["ce"] < 1.2 < math.log(4)
    assert all(0.0 <= r["drop_rate"] <= 1.0 and r["rel_bce"] is not None for r in val)
    loaded = load_run(tmp_path / "run", "best")
    assert tuple(loaded.classes) == synth_bench.classes
    assert loaded.model_config.depth == 2 and not loaded.model.training


def _comparable(records):
    """Metric records without wall-clock fields."""
    return [{k: v for k, v in r.items() if k not in ("clips_per_s", "time")} for r in records]


def test_resume_after_a_kill_mid_epoch_reproduces_the_uninterrupted_run(synth_bench, tmp_path, one_thread, monkeypatch):
    # Dropout and stochastic depth on: resuming must restore the RNG too, not just data order.
    common = {"model__drop_path_rate": 0.2, "model__head_dropout": 0.2, "schedule__checkpoint_every": 2}
    reference = train(load_config(None, tiny_overrides(synth_bench, **common)), tmp_path / "ref")
    assert reference.step == 6 and reference.epochs_done == 2  # 48 clips / 16 per step = 3 steps per epoch

    # The second run dies while saving step 5 (mid-epoch 2): only step 4's checkpoint survives.
    real_save = loop.save_checkpoint

    def save_or_die(run_dir, tag, model, optimizer, scheduler, state):
        if state["step"] == 5:
            raise KeyboardInterrupt("killed")
        return real_save(run_dir, tag, model, optimizer, scheduler, state)

    monkeypatch.setattr(loop, "save_checkpoint", save_or_die)
    # Worker processes in the interrupted and resumed runs, none in the reference: items must
    # not depend on which process loads them.
    killed = load_config(None, tiny_overrides(synth_bench, **common, data__workers=2, schedule__max_steps=5))
    with pytest.raises(KeyboardInterrupt):
        train(killed, tmp_path / "run")
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    assert max(r["step"] for r in read_metrics(tmp_path / "run")) == 5

    resumed = train(
        load_config(None, tiny_overrides(synth_bench, **common, data__workers=2)), tmp_path / "run", resume="last"
    )
    assert resumed.step == 6

    reference_weights = load_run(tmp_path / "ref", "last").model.state_dict()
    resumed_weights = load_run(tmp_path / "run", "last").model.state_dict()
    assert reference_weights.keys() == resumed_weights.keys()
    for name, tensor in reference_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=0, atol=0, msg=name)
    # The metrics read as if the run had never stopped (step 5 is logged once, with the same loss).
    assert _comparable(read_metrics(tmp_path / "run")) == _comparable(read_metrics(tmp_path / "ref"))
    assert resumed.replica_hashes == reference.replica_hashes


def test_non_finite_loss_stops_and_names_the_last_good_checkpoint(synth_bench, tmp_path, one_thread, monkeypatch):
    config = load_config(None, tiny_overrides(synth_bench, schedule__checkpoint_every=1))
    real_objective = loop.imd_objective
    calls = {"n": 0}

    def poisoned(output, *args, **kwargs):
        calls["n"] += 1
        terms = real_objective(output, *args, **kwargs)
        if calls["n"] == 5:  # micro-step 1 of step 3 (2 micro-steps per step)
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(loop, "imd_objective", poisoned)
    with pytest.raises(AvlabelError, match=r"NaN/inf at step 3 .*checkpoints/last\.safetensors"):
        train(config, tmp_path / "run")
    # The last checkpoint is step 2's: the poisoned step never reached the weights.
    state = torch.load(tmp_path / "run/checkpoints/last.state.pt", weights_only=True)
    assert state["step"] == 2
    assert all(torch.isfinite(t).all() for t in load_run(tmp_path / "run", "last").model.state_dict().values())


def test_resume_guards(synth_bench, tmp_path, one_thread):
    run = tmp_path / "run"
    config = load_config(None, tiny_overrides(synth_bench, schedule__max_steps=1))
    with pytest.raises(AvlabelError, match="nothing to resume"):
        train(config, run, resume="last")
    train(config, run)
    with pytest.raises(AvlabelError, match="already holds a run"):
        train(config, run)
    with pytest.raises(AvlabelError, match=r"already made schedule\.max_steps=1 steps; raise or remove it"):
        train(config, run, resume="last")
    wider = load_config(None, tiny_overrides(synth_bench, schedule__max_steps=2, model__embed_dim=64))
    with pytest.raises(AvlabelError, match=r"another model config \(embed_dim: 32 -> 64\).*--force"):
        train(wider, run, resume="last")
    # Changing how the model runs (not what it computes) is fine, and so is a new step budget.
    checkpointed = load_config(
        None, tiny_overrides(synth_bench, schedule__max_steps=2, model__grad_checkpointing="true")
    )
    result = train(checkpointed, run, resume="last")
    assert result.step == 2
    assert json.loads((run / "replicas.json").read_text())["step"] == 2


def test_out_of_memory_suggests_gradient_accumulation(synth_bench, tmp_path, one_thread, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "imd_objective", out_of_memory)
    with pytest.raises(
        AvlabelError,
        match=r"out of GPU memory with optim\.micro_batch=8; set --set optim\.micro_batch=4: "
        r"gradient accumulation \(2 -> 4 micro-steps\) keeps the global batch of 16",
    ):
        train(load_config(None, tiny_overrides(synth_bench)), tmp_path / "run")
