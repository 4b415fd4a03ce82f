"""Benchmark measurements on the CPU with tiny models: FLOP counting, matmul rate, memory, MFU."""

from __future__ import annotations

import pytest
import torch

from avlabel.bench.measure import count_train_step_flops, matmul_flops_per_s
from avlabel.bench.throughput import benchmark_model
from avlabel.errors import AvlabelError
from avlabel.models import build_model, model_config


def test_train_step_flops_are_forward_plus_twice_forward_for_backward():
    config = model_config("imd_tiny")
    model = build_model(config)
    batch = 2
    inputs = {
        "rgb": torch.randn(batch, 3, config.num_frames, config.img_size, config.img_size),
        "flow": torch.randn(batch, 2, config.num_frames, config.img_size, config.img_size),
        "audio": torch.randn(batch, config.audio_dim),
    }
    forward, total = count_train_step_flops(model, inputs, torch.tensor([0, 1]), torch.rand(batch))
    # Every linear layer costs 2*in*out per token forward; ViT-style models spend nearly all their
    # FLOPs there, so the patch embedding alone is a lower bound we can compute by hand.
    tokens_per_stream = batch * config.num_frames * (config.img_size // config.patch_size) ** 2
    patch_embed = 2 * tokens_per_stream * config.patch_size**2 * (3 + 2) * config.embed_dim
    assert forward > patch_embed
    # Backward costs about twice the forward (input and weight gradients); the first layer
    # needs no input gradient, so slightly less.
    assert 2.5 * forward < total < 3.05 * forward
    assert all(p.grad is None for p in model.parameters())  # counting leaves no gradients behind


def test_matmul_rate_is_plausible_for_a_cpu():
    rate = matmul_flops_per_s("cpu", size=256, repeats=2)
    assert 1e8 < rate < 1e14


def test_benchmark_model_measures_training_and_inference():
    result = benchmark_model("imd_tiny", batch=2, device="cpu", steps=2, warmup=1, frames=2, size=32, peak_flops=1e11)
    assert result["frames"] == 2 and result["size"] == 32 and result["visual_streams"] == 2
    assert result["train_clips_per_s"] > 0 and result["inference_clips_per_s"] > 0  # timings: no order on a shared CPU
    assert result["train_stream_clips_per_s"] == pytest.approx(2 * result["train_clips_per_s"])
    expected_mfu = result["train_gflops_per_step"] * 1e9 / (result["train_step_ms"] / 1000) / 1e11
    assert result["mfu"] == pytest.approx(expected_mfu)
    assert result["parameters"] == sum(
        p.numel() for p in build_model(model_config("imd_tiny", num_frames=2)).parameters()
    )
    assert result["train_peak_memory_mib"] is None or result["train_peak_memory_mib"] >= 0


def test_bad_benchmark_settings():
    with pytest.raises(AvlabelError, match="unknown model"):
        benchmark_model("imd_huge", batch=1, device="cpu", peak_flops=1.0)
    with pytest.raises(AvlabelError, match="must be >= 1"):
        benchmark_model("imd_tiny", batch=0, device="cpu", peak_flops=1.0)
