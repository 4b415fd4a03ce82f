"""Training and inference throughput of the model configs: clips/s, peak memory, FLOPs utilisation.

What is measured, per model, on random inputs of the model's shapes (data loading excluded):

* training: after ``warmup`` steps, ``steps`` optimiser steps of forward + IMD objective
  (`avlabel.train.objective.imd_objective`) + backward + SGD (momentum 0.9, the paper's
  optimiser; the fused CUDA kernel on GPUs), timed with one synchronisation before and one after
  the loop: nothing in the step reads a value back to the host, so the GPU queue never drains.
  An AVT model's step is its training forward (with the matching pairs of its matching head)
  and the class cross-entropy: its masked pass and self-supervised losses are not timed;
* inference: ``steps`` forward passes in ``inference_mode``;
* peak memory: CUDA ``max_memory_allocated`` (weights, gradients, optimiser state, activations);
  on the CPU the growth of the process' peak resident set over the phase (Linux: the peak is
  reset through ``/proc/self/clear_refs`` first; it is approximate because the allocator may
  reuse pages freed by an earlier model);
* model FLOPs utilisation (MFU): the FLOPs of one training step counted by
  ``torch.utils.flop_counter`` (forward and backward, the model's own matmuls/attention only, no
  recomputation), times the measured steps/s, over the device's *measured* dense matmul rate —
  bf16 on CUDA (the precision training runs in, under autocast), fp32 on the CPU — so the figure
  says how much of what this machine can actually do the model uses.

CUDA runs use bf16 autocast; ``compile=True`` wraps the model in ``torch.compile`` (the warm-up
steps then include compilation). Visual streams are reported so two-stream IMD can be compared
with single-stream TimeSformer per stream (paper section 3.2's efficiency claim).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from avlabel._device import resolve_device
from avlabel.bench.measure import (
    PeakMemory,
    autocast,
    count_train_step_flops,
    device_description,
    matmul_flops_per_s,
    timed,
)
from avlabel.errors import AvlabelError

if TYPE_CHECKING:
    import torch


def _random_inputs(
    config, batch: int, device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Model inputs of the config's modalities, labels and relevance targets (random, on ``device``)."""
    import torch

    shape = (batch, config.num_frames, config.img_size, config.img_size)
    inputs: dict[str, torch.Tensor] = {}
    if "rgb" in config.modalities:
        inputs["rgb"] = torch.randn(batch, 3, *shape[1:], device=device)  # (B, 3, T, H, W)
    if "flow" in config.modalities:
        inputs["flow"] = torch.randn(batch, 2, *shape[1:], device=device)  # (B, 2, T, H, W)
    if config.has_audio and config.audio_input == "tokens":  # AVT: a full window of audio tokens
        inputs["audio_tokens"] = torch.randn(batch, config.audio_tokens, config.audio_dim, device=device)
        inputs["audio_token_valid"] = torch.ones(batch, config.audio_tokens, dtype=torch.bool, device=device)
    elif config.has_audio:
        inputs["audio"] = torch.randn(batch, config.audio_dim, device=device)
        inputs["audio_present"] = torch.ones(batch, dtype=torch.bool, device=device)
    labels = torch.randint(0, config.num_classes, (batch,), device=device)
    relevance_target = torch.rand(batch, device=device)
    return inputs, labels, relevance_target


def _checked_configs(names: Sequence[str], batch: int, steps: int, warmup: int, frames: int | None, size: int | None):
    """The named model configs with ``frames``/``size`` applied, after checking the run's settings."""
    from avlabel.models import model_config

    if batch < 1 or steps < 1 or warmup < 0:
        raise AvlabelError(f"--batch ({batch}) and --steps ({steps}) must be >= 1 and --warmup ({warmup}) >= 0")
    overrides = {key: value for key, value in (("num_frames", frames), ("img_size", size)) if value is not None}
    return [model_config(name, **overrides) for name in names]


def benchmark_model(
    name: str,
    batch: int,
    device: str,
    steps: int = 10,
    warmup: int = 3,
    frames: int | None = None,
    size: int | None = None,
    compile: bool = False,
    peak_flops: float | None = None,
) -> dict[str, Any]:
    """Benchmark one named model config (see the module docstring for what is measured).

    Args:
        name: a name from ``avlabel models`` (``imd_b``, ``imd_l``, ``timesformer_b``, ...).
        batch: clips per step.
        device: "cpu", "cuda" or "cuda:N".
        steps: timed steps per phase (training and inference).
        warmup: untimed steps first (with ``compile`` these include compilation).
        frames, size: override the config's T and input side (None keeps them).
        compile: wrap the model in ``torch.compile``.
        peak_flops: the device's matmul FLOP/s; measured here when None.

    Returns:
        A JSON-ready dict of settings and measurements.
    """
    import torch

    from avlabel.models import build_model

    (config,) = _checked_configs([name], batch, steps, warmup, frames, size)
    device = resolve_device(device)
    if peak_flops is None:
        peak_flops = matmul_flops_per_s(device)

    memory = PeakMemory(device)
    memory.reset()
    model = build_model(config).to(device)
    inputs, labels, target = _random_inputs(config, batch, device)
    forward_flops, step_flops = count_train_step_flops(model, inputs, labels, target)
    runner = torch.compile(model) if compile else model
    train_seconds, train_cpu_seconds = _time_training(model, runner, inputs, labels, target, steps, warmup)
    train_peak = memory.peak_bytes()
    memory.reset()
    inference_seconds = _time_inference(model, runner, inputs, steps, warmup)
    inference_peak = memory.peak_bytes()

    train_clips_per_s = batch * steps / train_seconds
    visual_streams = len(config.visual_modalities)
    return {
        "model": name,
        "modalities": list(config.modalities),
        "fusion": config.fusion if config.is_audio_visual else None,
        "visual_streams": visual_streams,
        "frames": config.num_frames,
        "size": config.img_size,
        "batch": batch,
        "steps": steps,
        "warmup": warmup,
        "compile": compile,
        "precision": "bf16-autocast" if device.type == "cuda" else "fp32",
        "parameters": sum(p.numel() for p in model.parameters()),
        "forward_gflops_per_clip": forward_flops / batch / 1e9,
        "train_gflops_per_step": step_flops / 1e9,
        "train_step_ms": 1000 * train_seconds / steps,
        "train_step_cpu_ms": 1000 * train_cpu_seconds / steps,  # process CPU time (all threads)
        "train_clips_per_s": train_clips_per_s,
        "train_stream_clips_per_s": train_clips_per_s * visual_streams,
        "train_peak_memory_mib": None if train_peak is None else train_peak / 2**20,
        "train_achieved_tflops": step_flops * steps / train_seconds / 1e12,
        "mfu": step_flops * steps / train_seconds / peak_flops,
        "inference_clips_per_s": batch * steps / inference_seconds,
        "inference_peak_memory_mib": None if inference_peak is None else inference_peak / 2**20,
    }


def _time_training(model, runner, inputs: dict, labels, target, steps: int, warmup: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``steps`` training steps (forward, IMD objective, backward, SGD) after ``warmup``."""
    import torch

    from avlabel.train.objective import imd_objective

    device = labels.device
    # foreach on the CPU (no fused CPU SGD in every torch version), the fused kernel on CUDA.
    fused = {"fused": True} if device.type == "cuda" else {"foreach": True}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9, weight_decay=1e-4, **fused)

    def train_step() -> None:
        with autocast(device):
            loss = imd_objective(runner(**inputs), labels, target).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    timed(device, train_step, warmup)
    seconds = timed(device, train_step, steps)
    optimizer.zero_grad(set_to_none=True)
    optimizer.state.clear()  # momentum buffers: not part of what inference holds
    return seconds


def _time_inference(model, runner, inputs: dict, steps: int, warmup: int) -> float:
    """Wall-clock seconds of ``steps`` forward passes in ``inference_mode`` after ``warmup``."""
    import torch

    device = next(model.parameters()).device

    def inference_step() -> None:
        with torch.inference_mode(), autocast(device):
            runner(**inputs)

    model.eval()
    timed(device, inference_step, warmup)
    return timed(device, inference_step, steps)[0]


def run_benchmarks(
    names: Sequence[str],
    batch: int,
    device: str,
    steps: int = 10,
    warmup: int = 3,
    frames: int | None = None,
    size: int | None = None,
    compile: bool = False,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Benchmark several models in one process against one matmul-rate measurement.

    Returns:
        ``{"environment", "peak_matmul_tflops", "results": [...], "ratios"}``, where ``ratios``
        holds, for each later model, the first model's clips/s divided by that model's
        ("imd_b / timesformer_b": training, training per visual stream, inference).
    """
    resolve_device(device)  # before the first model runs for minutes
    _checked_configs(names, batch, steps, warmup, frames, size)  # all of them, before the first runs for minutes
    peak_flops = matmul_flops_per_s(device)
    results = []
    for name in names:
        results.append(benchmark_model(name, batch, device, steps, warmup, frames, size, compile, peak_flops))
        if on_result is not None:
            on_result(results[-1])
    first = results[0]
    keys = ("train_clips_per_s", "train_stream_clips_per_s", "inference_clips_per_s")
    ratios = {
        f"{first['model']} / {other['model']}": {key: first[key] / other[key] for key in keys} for other in results[1:]
    }
    return {
        "environment": device_description(device),
        "peak_matmul_tflops": peak_flops / 1e12,
        "peak_matmul_precision": "bf16" if device.startswith("cuda") else "fp32",
        "results": results,
        "ratios": ratios,
    }
