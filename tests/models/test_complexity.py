"""Parameter and FLOP counting on the meta device."""

from __future__ import annotations

import pytest
import timm
import torch

from avlabel.models import build_model, count_flops, count_parameters, example_inputs, model_complexity, model_config


@pytest.mark.parametrize("name", ["imd_tiny", "avt_tiny"])
def test_parts_add_up_to_the_whole(name):
    model = build_model(model_config(name))
    counts = count_parameters(model)
    assert counts["visual"] + counts["audio"] + counts["fusion"] == counts["total"]
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["visual"] == sum(p.numel() for p in model.streams["rgb"].parameters()) or name == "imd_tiny"
    assert counts["audio"] > 0 and counts["fusion"] > 0


def test_part_flops_add_up_to_one_uncut_count():
    """Attributing FLOPs to parts by submodule neither loses nor double-counts any (nested modules)."""
    for name in ("imd_tiny", "avt_tiny"):
        config = model_config(name)
        figures = model_complexity(config, with_ast=False)["gflops"]
        with torch.device("meta"):
            model = build_model(config).eval()
        whole = count_flops(model, **example_inputs(config, device="meta"))
        assert abs(figures["total"] * 1e9 - whole) < 1e-6 * whole, name


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
