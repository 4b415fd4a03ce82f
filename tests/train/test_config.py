"""Training config: YAML + --set overrides into typed dataclasses, errors naming the dotted path."""

from __future__ import annotations

from pathlib import Path

import pytest

from avlabel.errors import AvlabelError
from avlabel.train.config import TrainConfig, dump_config, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = ["data.manifest=m.csv", "audio.cache=audio"]


def test_yaml_file_with_overrides_gives_typed_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  manifest: m.csv\n  frames: 16\naudio:\n  cache: a\noptim:\n  lr: 1e-3\n")
    config = load_config(path, ["optim.global_batch=128", "model.modalities=[rgb, audio]", "model.depth=2"])
    assert isinstance(config, TrainConfig)
    assert config.data.frames == 16 and config.data.stride == 8  # file value, default
    assert config.optim.lr == 0.001  # YAML 1.1 reads "1e-3" as a string; a float field takes it
    assert config.optim.global_batch == 128
    assert config.model.modalities == ("rgb", "audio")
    assert config.model.depth == 2
    assert config.model.imd_alpha == 0.25 and config.model.imd_mode == "M"  # paper defaults


def test_dumped_config_loads_back_identically(tmp_path):
    config = load_config(None, [*BASE, "optim.lr=0.01", "schedule.max_steps=7", "model.pretrained=null"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lrr=0.1"], r"unknown config key 'optim\.lrr'; did you mean 'optim\.lr'\?"),
        (["optimiser.lr=0.1"], r"unknown config key 'optimiser'; did you mean 'optim'\?"),
        (["optim.lr=fast"], r"optim\.lr: expected float, got str 'fast'"),
        (["optim.lr=-1"], r"optim\.lr: must be > 0, got -1\.0"),
        (["optim.lr=.nan"], r"optim\.lr: must be a finite number"),
        (["data.frames=2.5"], r"data\.frames: expected int, got float 2\.5"),
        (["data.frames=true"], r"data\.frames: expected int, got bool True"),
        (["data.frames=0"], r"data\.frames: must be >= 1, got 0"),
        (["model.imd_mode=X"], r"model\.imd_mode: expected one of M, W, got str 'X'"),
        (["model.imd_alpha=1.5"], r"model\.imd_alpha: 1\.5 must lie in \[0, 1\]"),
        (["imd.augment_p=-0.1"], r"imd\.augment_p: must be in \[0, 1\]"),
        (["model.fusion=avc", "imd.augment_p=0.5"], r"imd\.augment_p: must be 0 with model\.fusion=avc: .*, got 0\.5"),
        (
            ["model.modalities=[rgb, sound]"],
            r"model\.modalities\[1\]: expected one of rgb, flow, audio, got str 'sound'",
        ),
        (["model.modalities=[]"], r"model\.modalities: must name at least one"),
        (
            ["optim.global_batch=20", "optim.micro_batch=8"],
            r"optim\.global_batch: must be a multiple of optim\.micro_batch \(8\)",
        ),
        (["optim.min_lr=0.1"], r"optim\.min_lr: must be in \[0, optim\.lr\]"),
        (["runtime.device=gpu"], r"runtime\.device: must be auto, cpu, cuda or cuda:N, got 'gpu'"),
        (["data=3"], r"data: expected a mapping of keys, got int 3"),
        (["audio.cache=null"], r"audio\.cache: is required when model\.modalities includes audio"),
        (["data.val_split=train"], r"data\.val_split: must differ from data\.train_split"),
    ],
)
def test_bad_values_name_their_dotted_path(overrides, message):
    with pytest.raises(AvlabelError, match=message):
        load_config(None, [*BASE, *overrides])


@pytest.mark.parametrize(
    ("overrides", "augment_p"),
    [
        ([], 0.5),
        (["model.fusion=late_concat"], 0.0),
        (["model.fusion=avc"], 0.0),
        (["model.fusion=gmu"], 0.0),
        (["model.modalities=[audio]"], 0.0),
        (["model.modalities=[rgb]"], 0.0),
        (["model.fusion=gmu", "imd.augment_p=0.3"], 0.3),
        (["model.fusion=avc", "model.modalities=[audio]", "imd.augment_p=0.5"], 0.5),
    ],
)
def test_intra_class_augmentation_defaults_to_imd_only(overrides, augment_p, tmp_path):
    # Table 5: the baselines train without it; only IMD* applies it. The resolved value is recorded.
    config = load_config(None, [*BASE, *overrides])
    assert config.imd.augment_p == augment_p
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config(path, ["model.fusion=imd"]).imd.augment_p == augment_p


def test_missing_required_key_and_bad_override_syntax():
    with pytest.raises(AvlabelError, match=r"missing required config key 'data\.manifest'"):
        load_config(None, ["audio.cache=a"])
    with pytest.raises(AvlabelError, match=r"expected KEY=VALUE"):
        load_config(None, [*BASE, "optim.lr"])
    with pytest.raises(AvlabelError, match=r"--set 'optim\.lr\.x=1': optim\.lr is not a section"):
        load_config(None, [*BASE, "optim.lr=0.1", "optim.lr.x=1"])


def test_unreadable_files(tmp_path):
    with pytest.raises(AvlabelError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(AvlabelError, match="is not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(AvlabelError, match="must hold a mapping of sections"):
        load_config(listing)


@pytest.mark.parametrize(
    "name",
    ["imd_b_kinetics400", "imd_l_kinetics400", "imd_b_ucf101", "synthetic", "avt_b_kinetics_sounds", "avt_synthetic"],
)
def test_shipped_examples_are_valid(name):
    config = load_config(EXAMPLES / f"{name}.yaml")
    assert config.data.manifest


def test_avt_examples_train_every_loss_jointly():
    from avlabel.train.config import model_config_of

    for name in ("avt_b_kinetics_sounds", "avt_synthetic"):
        config = load_config(EXAMPLES / f"{name}.yaml")
        weights = [getattr(config.avt, f"{loss}_weight") for loss in ("contrastive", "matching", "masked_video")]
        assert config.avt.classification_weight == 1.0 and all(weight > 0 for weight in weights)
        model = model_config_of(config)
        assert model.fusion == "bottleneck" and model.audio_input == "tokens"
        assert set(model.pretext_heads) == {"contrastive", "matching", "masked_video", "masked_audio"}
    big = model_config_of(load_config(EXAMPLES / "avt_b_kinetics_sounds.yaml"))
    assert (big.n_bottleneck, big.fusion_layer, big.depth, big.modalities) == (4, 8, 12, ("rgb", "audio"))  # MBT


def test_imd_b_example_has_the_paper_settings():
    config = load_config(EXAMPLES / "imd_b_kinetics400.yaml")
    assert (config.data.frames, config.data.size) == (8, 224)
    assert config.model.name == "imd_b" and config.model.modalities == ("rgb", "flow", "audio")
    assert (config.optim.name, config.optim.momentum, config.optim.lr, config.optim.weight_decay) == (
        "sgd",
        0.9,
        0.005,
        1e-4,
    )
    assert config.optim.global_batch == 64 and config.schedule.epochs == 15
    assert (config.audio.k, config.audio.ya, config.audio.overlap) == (10, 20, "iou")
    assert (config.model.imd_alpha, config.model.imd_mode) == (0.25, "M") and config.imd.augment_p > 0


# The model section of a run directory's config.yaml as versions before the generated model section wrote it.
OLD_LAYOUT = """\
data: {manifest: m.csv}
audio: {cache: a}
model:
  name: imd_tiny
  fusion: gmu
  modalities: [rgb, audio]
  pretrained: null
  rgb_mean: null
  rgb_std: null
  activation_checkpointing: true
  compile: false
  overrides: {depth: 2, embed_dim: 32}
imd: {alpha: 0.5, mode: W, relevance_weight: 0.1, augment_p: 0.0}
"""


def test_old_run_directories_load_into_the_current_layout(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(OLD_LAYOUT)
    config = load_config(path)
    current = load_config(
        None,
        [
            "data.manifest=m.csv",
            "audio.cache=a",
            "model.name=imd_tiny",
            "model.fusion=gmu",
            "model.modalities=[rgb, audio]",
            "model.pretrained=null",
            "model.grad_checkpointing=true",
            "model.depth=2",
            "model.embed_dim=32",
            "model.imd_alpha=0.5",
            "model.imd_mode=W",
            "imd.relevance_weight=0.1",
            "imd.augment_p=0",
        ],
    )
    assert config == current
    path.write_text(dump_config(config))
    assert load_config(path) == config  # what a resumed run writes back is the current layout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["imd.alpha=0.5", "model.imd_alpha=0.3"],
            r"imd\.alpha and model\.imd_alpha set the same thing; keep only model\.imd_alpha",
        ),
        (
            ["model.overrides={depth: 2}", "model.depth=3"],
            r"model\.overrides\.depth: set it through model\.depth instead",
        ),
        (["model.overrides={num_frames: 2}"], r"model\.overrides\.num_frames: set it through data\.frames instead"),
        (["model.num_frames=2"], r"model\.num_frames: set it through data\.frames instead"),
    ],
)
def test_a_setting_has_one_key(overrides, message):
    with pytest.raises(AvlabelError, match=message):
        load_config(None, [*BASE, *overrides])
