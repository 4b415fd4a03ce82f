"""Checkpoint files per the run-directory contract: safetensors weights + metadata, state, load_run."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from avlabel.errors import AvlabelError
from avlabel.labels import LabelSet
from avlabel.models import build_model, model_config
from avlabel.train.checkpoint import (
    checkpoint_paths,
    load_run,
    load_training_state,
    read_metadata,
    save_checkpoint,
    weights_sha256,
)

CLASSES = ("playing drums", "whistling", "applauding")


def _save(run_dir, tag="last", step=7, seed=0, predates=(), **overrides):
    """A checkpoint of a tiny model; ``predates`` names config fields left out, as in older checkpoints."""
    torch.manual_seed(seed)
    settings = {
        "num_classes": len(CLASSES),
        "depth": 2,
        "embed_dim": 32,
        "audio_hidden_dim": 32,
        "space_time_blocks": 1,
    }
    config = model_config("imd_tiny", **{**settings, **overrides})
    model = build_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    model(
        rgb=torch.randn(2, 3, 4, 32, 32), flow=torch.randn(2, 2, 4, 32, 32), audio=torch.randn(2, 768)
    ).logits.sum().backward()
    optimizer.step()
    saved_config = {key: value for key, value in config.to_dict().items() if key not in predates}
    state = {
        "model_config": saved_config,
        "classes": list(CLASSES),
        "label_set": "mini",
        "step": step,
        "rng": {"cpu": [torch.get_rng_state()]},
        "best_top1": None,
    }
    return model, save_checkpoint(run_dir, tag, model, optimizer, scheduler, state)


def test_weights_carry_self_describing_metadata_and_rebuild_the_model(tmp_path):
    model, path = _save(tmp_path)
    assert path == checkpoint_paths(tmp_path, "last")[0] and path.name == "last.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        raw = handle.metadata()
    assert json.loads(raw["classes"]) == list(CLASSES)
    assert raw["classes_sha256"] == LabelSet("mini", CLASSES).sha256
    assert raw["label_set"] == "mini" and raw["avlabel_version"]
    assert json.loads(raw["model_config"])["embed_dim"] == 32

    loaded = load_run(path)  # a bare weights file: no run config
    assert loaded.train_config is None and loaded.classes == list(CLASSES) and not loaded.model.training
    assert weights_sha256(loaded.model.state_dict()) == weights_sha256(model.state_dict())
    inputs = {"rgb": torch.randn(2, 3, 4, 32, 32), "flow": torch.randn(2, 2, 4, 32, 32), "audio": torch.randn(2, 768)}
    model.eval()
    torch.testing.assert_close(loaded.model(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)


def test_checkpoints_older_than_the_se_reduction_setting_load_with_the_bottleneck_they_were_built_with(tmp_path):
    # Before se_reduction existed the se_gate bottleneck was D // 4: 16 units at D = 64, where
    # today's default would build 8.
    model, path = _save(tmp_path, fusion="se_gate", embed_dim=64, se_reduction=4, predates=("se_reduction",))
    loaded = load_run(path)
    assert loaded.model_config.se_reduction == 4
    assert weights_sha256(loaded.model.state_dict()) == weights_sha256(model.state_dict())
    assert load_training_state(path)["model_config"]["se_reduction"] == 4


def test_training_state_loads_weights_only_and_belongs_to_its_weights(tmp_path):
    _, path = _save(tmp_path)
    state = load_training_state(path)
    assert state["step"] == 7 and state["optimizer"]["state"] and state["scheduler"]["last_epoch"] == 0
    torch.load(checkpoint_paths(tmp_path, "last")[1], weights_only=True)  # no pickled code
    # A crash between the two renames leaves a torn pair: detected, not mixed.
    _, state_path = checkpoint_paths(tmp_path, "last")
    previous = state_path.read_bytes()
    _save(tmp_path, step=8)
    state_path.write_bytes(previous)
    with pytest.raises(AvlabelError, match="come from different saves"):
        load_training_state(path)


def test_run_directory_resolution_and_errors(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(AvlabelError, match="no checkpoints yet"):
        load_run(tmp_path)
    _save(tmp_path, "last")
    with pytest.raises(AvlabelError, match=r"no 'best' checkpoint; available: last\.safetensors"):
        load_run(tmp_path, "best")
    assert load_run(tmp_path, "last").checkpoint_path.name == "last.safetensors"
    assert load_run(tmp_path / "checkpoints/last.state.pt").checkpoint_path.name == "last.safetensors"
    with pytest.raises(AvlabelError, match="neither a run directory nor a checkpoint"):
        load_run(tmp_path / "nope")
    other = tmp_path / "plain.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(AvlabelError, match="no avlabel metadata"):
        read_metadata(other)
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(AvlabelError, match="not an avlabel checkpoint"):
        load_run(tmp_path / "weights.bin")


def test_weights_hash_sees_every_bit():
    state = {"a": torch.zeros(3), "b": torch.ones(2, 2, dtype=torch.bfloat16)}
    reference = weights_sha256(state)
    assert weights_sha256(dict(reversed(state.items()))) == reference  # order-independent
    nudged = {**state, "a": torch.tensor([0.0, 0.0, torch.finfo(torch.float32).tiny])}
    assert weights_sha256(nudged) != reference
    assert weights_sha256({**state, "a": torch.zeros(3, dtype=torch.float64)}) != reference
