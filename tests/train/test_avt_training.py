"""AVT through ``avlabel train`` and ``avlabel eval``: learning, exact resume, the two-stage recipe."""

from __future__ import annotations

import json
import math

import torch
from click.testing import CliRunner

from avlabel.cli import cli
from avlabel.train.checkpoint import load_run
from avlabel.train.config import dump_config, load_config
from avlabel.train.loop import train
from avlabel.train.runlog import read_metrics

from .conftest import AVT, tiny_overrides

LOSSES = ("contrastive", "matching", "masked_video", "masked_audio", "masked_segment")


def _avt(bench, **extra) -> list[str]:
    """The tiny AVT on the token cache, every self-supervised loss on (segments of 4 of the ~16 tokens)."""
    return tiny_overrides(bench, **AVT, audio__cache=bench.audio_tokens, avt__segment_length=4, **extra)


def _train_cli(overrides: list[str], out) -> str:
    """``avlabel train --config C --out OUT`` with a config file holding ``overrides``; its output."""
    config = out.with_suffix(".yaml")
    config.write_text(dump_config(load_config(None, overrides)))
    result = CliRunner().invoke(cli, ["train", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_tiny_avt_learns_the_synthetic_benchmark_above_chance(synth_bench, tmp_path, one_thread):
    # 54 steps of 8 clips, RGB + flow + audio tokens, bottleneck from layer 1 of 2, every loss at 0.1.
    # Seeds 0-2 reach 72-84% here (after 36 steps seed 0 was still at 44%: IMD's 36 are not enough).
    run = tmp_path / "run"
    _train_cli(_avt(synth_bench, schedule__epochs=9, schedule__val_every=3, optim__global_batch=8), run)
    records = read_metrics(run)
    val = [r for r in records if r["kind"] == "val"]
    train_records = [r for r in records if r["kind"] == "train"]
    # 32 validation clips of 4 classes: chance is 25% (P(>= 50%) by luck is 0.1%).
    assert max(r["top1"] for r in val) >= 0.5, [round(r["top1"], 3) for r in val]
    assert val[-1]["ce"] < math.log(4)
    for name in LOSSES:  # every term logged in training (not in validation, which gathers nothing)
        assert all(math.isfinite(r[name]) for r in train_records) and all(r[name] is None for r in val), name
    # Audio reconstruction learns (the fixture's 32 px frames are mostly noise once each patch is
    # standardised: masked video barely moves in 54 steps, 0.51 -> 0.49).
    for name in ("masked_audio", "masked_segment"):
        first, last = train_records[0][name], sum(r[name] for r in train_records[-6:]) / 6
        assert last < 0.8 * first, (name, first, last)
    loaded = load_run(run, "best")
    assert loaded.model_config.pretext_heads == ("contrastive", "matching", "masked_video", "masked_audio")
    assert loaded.model_config.audio_tokens == 101 and loaded.model_config.audio_dim == 128  # from the cache
    # avlabel eval scores the contrastive embeddings and the matching head without a special case.
    result = CliRunner().invoke(
        cli, ["eval", "--run", str(run), "--manifest", str(synth_bench.manifest), "--split", "val", "--views", "1x1"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "eval" / "val-best" / "metrics.json").read_text())
    assert metrics["retrieval"]["videos"] > 20 and metrics["matching"]["pairs"] == 2 * metrics["retrieval"]["videos"]


def test_avt_resumes_exactly_masks_and_hard_negatives_included(synth_bench, tmp_path, one_thread):
    """Masks and negatives come from the generators a checkpoint saves: a resumed run ends bit-identical."""
    common = {"schedule__checkpoint_every": 2, "model__drop_path_rate": 0.2}
    reference = train(load_config(None, _avt(synth_bench, **common)), tmp_path / "ref")
    assert reference.step == 6
    stopped = train(load_config(None, _avt(synth_bench, **common, schedule__max_steps=4)), tmp_path / "run")
    assert stopped.step == 4 and stopped.stopped_early
    resumed = train(load_config(None, _avt(synth_bench, **common)), tmp_path / "run", resume="last")
    assert resumed.step == 6
    expected = load_run(tmp_path / "ref", "last").model.state_dict()
    for name, tensor in load_run(tmp_path / "run", "last").model.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0, msg=name)


def test_self_supervised_stage_then_fine_tuning_from_its_checkpoint(synth_bench, tmp_path, one_thread):
    stage = tmp_path / "ssl"
    _train_cli(_avt(synth_bench, avt__classification_weight=0, schedule__max_steps=3), stage)
    ssl = load_run(stage, "last")
    train_records = [r for r in read_metrics(stage) if r["kind"] == "train"]
    assert all(r["ce"] is not None and r["contrastive"] is not None for r in train_records)  # the probe's CE, logged

    weights = stage / "checkpoints" / "last.safetensors"
    off = {f"avt__{loss}_weight": 0 for loss in LOSSES}
    output = _train_cli(
        _avt(synth_bench, **off, model__pretrained=str(weights), schedule__max_steps=1), tmp_path / "ft"
    )
    report = "".join(output.split())  # the load report (rich wraps long paths anywhere)
    assert f"tensorsfrom{weights}" in report and "ignoredfromthecheckpoint:contrastive." in report
    tuned = load_run(tmp_path / "ft", "last")
    assert tuned.model_config.pretext_heads == () and tuned.model_config.rgb_mean == ssl.model_config.rgb_mean
    assert not any(key.startswith(("contrastive.", "matching_head.", "decoders.")) for key in tuned.model.state_dict())
