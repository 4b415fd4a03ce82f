"""ModelConfig: named configs, overrides, validation with dotted paths, checkpoint round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from avlabel.errors import AvlabelError
from avlabel.models import FUSION_NAMES, ModelConfig, list_models, model_config


def test_named_configs_match_the_paper_sizes():
    imd_b, imd_l, timesformer_b = model_config("imd_b"), model_config("imd_l"), model_config("timesformer_b")
    assert (imd_b.embed_dim, imd_b.depth, imd_b.num_heads, imd_b.patch_size) == (768, 12, 12, 16)
    assert (imd_l.embed_dim, imd_l.depth, imd_l.num_heads, imd_l.patch_size) == (1024, 24, 16, 16)
    assert imd_b.space_time_blocks == imd_l.space_time_blocks == 2
    assert timesformer_b.space_time_blocks == timesformer_b.depth == 12
    assert imd_b.modalities == ("rgb", "flow", "audio") and imd_b.fusion == "imd"
    assert (imd_b.imd_alpha, imd_b.imd_mode, imd_b.num_frames, imd_b.img_size) == (0.25, "M", 8, 224)


def test_list_models_filters_like_timm():
    assert {"imd_b", "imd_l", "timesformer_b", "imd_tiny"} <= set(list_models())
    assert list_models("imd_*") == [name for name in list_models() if name.startswith("imd_")]
    assert list_models("nothing*") == []


def test_overrides_are_validated_and_lists_become_tuples():
    config = model_config("imd_tiny", modalities=["rgb", "audio"], fusion="gmu", imd_alpha=1)
    assert config.modalities == ("rgb", "audio") and config.fusion == "gmu"
    assert config.imd_alpha == 1.0 and isinstance(config.imd_alpha, float)
    assert config.visual_modalities == ("rgb",) and config.is_audio_visual


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"depth": "12"}, "model.depth: expected int"),
        ({"qkv_bias": 1}, "model.qkv_bias: expected bool"),
        ({"num_frames": True}, "model.num_frames: expected int"),
        ({"fusion": "concat"}, "model.fusion: unknown fusion head 'concat'; choose one of imd"),
        ({"modalities": ["rgb", "depth"]}, "model.modalities"),
        ({"modalities": []}, "model.modalities"),
        ({"imd_mode": "X"}, "model.imd_mode"),
        ({"imd_alpha": 1.5}, "model.imd_alpha"),
        ({"space_time_blocks": 5}, "model.space_time_blocks"),
        ({"img_size": 30}, "model.img_size: 30 is not a multiple of patch_size 8"),
        ({"num_heads": 3}, "model.num_heads"),
        ({"dept": 4}, "unknown config key 'model.dept'; did you mean 'model.depth'?"),
    ],
)
def test_bad_values_name_the_dotted_path(overrides, message):
    with pytest.raises(AvlabelError, match=message.replace("(", r"\(")):
        model_config("imd_tiny", **overrides)


def test_unknown_model_lists_the_choices():
    with pytest.raises(AvlabelError, match="unknown model 'imd_xl'; choose one of imd_b, imd_l"):
        model_config("imd_xl")


def test_checkpoint_round_trip_through_json():
    config = model_config("imd_tiny", fusion="avc", pretrained_image="/weights/vit.safetensors")
    data = json.loads(json.dumps(config.to_dict()))
    assert ModelConfig.from_dict(data) == config
    # asdict (what nanoGPT-style checkpoints store) round-trips too.
    assert ModelConfig.from_dict(dataclasses.asdict(config)) == config


def test_from_dict_reports_the_callers_path():
    with pytest.raises(AvlabelError, match=r"train\.model\.depth"):
        ModelConfig.from_dict({"depth": -1}, path="train.model")


def test_fusion_names_match_the_head_table():
    from avlabel.models import FUSION_HEADS

    assert set(FUSION_HEADS) == set(FUSION_NAMES)
