"""Parameter and FLOP counting on the meta device."""

from __future__ import annotations

import pytest
import timm
import torch

from avlabel.models import (
    build_model,
    count_flops,
    count_parameters,
    example_inputs,
    fusion_flops,
    model_complexity,
    model_config,
)


@pytest.mark.parametrize("name", ["imd_tiny", "avt_tiny"])
def test_parts_add_up_to_the_whole(name):
    model = build_model(model_config(name))
    counts = count_parameters(model)
    assert counts["visual"] + counts["audio"] + counts["fusion"] == counts["total"]
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["visual"] == sum(p.numel() for p in model.streams["rgb"].parameters()) or name == "imd_tiny"
    assert counts["audio"] > 0 and counts["fusion"] > 0


@pytest.mark.parametrize("name", ["imd_tiny", "avt_tiny"])
def test_part_flops_are_the_submodules_that_ran_them(name):
    """Attributing FLOPs to parts by submodule neither loses nor double-counts any (nested modules)."""
    config = model_config(name)
    figures = model_complexity(config, with_ast=False)["gflops"]
    with torch.device("meta"):
        model = build_model(config).eval()
    whole = count_flops(model, **example_inputs(config, device="meta"))
    rgb = count_flops(model.streams["rgb"], torch.empty(1, 3, 4, 32, 32, device="meta"))
    assert abs(figures["total"] * 1e9 - whole) < 1e-6 * whole
    if name == "avt_tiny":  # the fused video stream costs more than the stream alone: the bottleneck's share
        assert rgb < figures["visual"] * 1e9 < 1.5 * rgb
    else:  # two streams and the RGB/flow fusion
        flow = count_flops(model.streams["flow"], torch.empty(1, 2, 4, 32, 32, device="meta"))
        both = count_flops(model.visual_fusion, torch.empty(1, 128, device="meta"))
        assert abs(figures["visual"] * 1e9 - rgb - flow - both) < 1e-6 * rgb
    assert figures["audio"] > 0 and figures["fusion"] > 0


def test_fusion_flops_match_the_extra_tokens_each_fusion_attends_to():
    """Bottleneck and full attention over late fusion, counted by hand for one RGB stream and audio.

    Per fused layer (2 FLOPs per multiply-add, D wide, T frames of S tokens, A = 1 + N_a audio
    tokens, K bottleneck tokens): the bottleneck adds K tokens to every frame and to the audio
    (24 D^2 of projections and MLP per token, and the larger attention); full attention lets the
    video queries read all T S + A tokens and the audio queries likewise, with keys and values
    of every token computed by each stream's block.
    """
    config = model_config("avt_tiny", audio_tokens=12, audio_dim=16)
    d, t, s, a, k = 64, 4, 17, 13, 4
    rows = {
        (row["fusion"], row["fusion_layer"]): row for row in fusion_flops(config, bottlenecks=(k,), fusion_layers=(1,))
    }
    fused_layers = 3  # layers 1-3 of 4
    bottleneck = 24 * d * d * k * (t + 1) + 4 * d * (t * ((s + k) ** 2 - s**2) + (a + k) ** 2 - a**2)
    full = 4 * d * d * (a + t * s) + 4 * d * ((t * s) ** 2 - t * s**2 + 2 * a * t * s)
    assert rows[("bottleneck", 1)]["extra_gflops"] * 1e9 == pytest.approx(fused_layers * bottleneck, rel=1e-9)
    assert rows[("full_attention", 1)]["extra_gflops"] * 1e9 == pytest.approx(fused_layers * full, rel=1e-9)
    assert rows[("late", 4)]["extra_gflops"] == 0


def test_per_frame_stream_costs_t_image_forwards():
    """With no space-time block an RGB stream is the image ViT run on each of the T frames."""
    config = model_config("imd_tiny", modalities=("rgb",), space_time_blocks=0, num_frames=3)
    with torch.device("meta"):
        vit = timm.create_model(
            "vit_base_patch16_224", img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=2, num_classes=0
        )
    image_flops = count_flops(vit, torch.empty(1, 3, 32, 32, device="meta"))
    visual_gflops = model_complexity(config)["gflops"]["visual"]
    assert abs(visual_gflops * 1e9 - 3 * image_flops) < 1e-3 * image_flops


def test_timesformer_b_matches_its_published_cost():
    """TimeSformer-B, 8x224^2: 0.59 TFLOPs (multiply-adds) for 3 views, i.e. ~196.7 GMACs per view."""
    figures = model_complexity(model_config("timesformer_b"))
    assert abs(figures["gflops"]["total"] / 2 - 196.7) < 1.0
    assert abs(figures["params"]["total"] / 1e6 - 121.4) < 1.0  # TimeSformer-B: 121.4M parameters


def test_ast_is_counted_apart_for_audio_models_only():
    with_audio = model_complexity(model_config("imd_tiny"))
    assert abs(with_audio["params"]["ast"] / 1e6 - 86.2) < 0.5  # AST-base encoder
    assert with_audio["gflops"]["ast"] > 100 * with_audio["gflops"]["total"]
    assert "ast" not in model_complexity(model_config("timesformer_tiny"))["gflops"]
