"""Parameter and FLOP counts per model part, for ``avlabel models`` and ``avlabel bench``.

Everything is measured on the meta device (shapes only: no memory, no arithmetic), so even
IMD-L is counted in about a second. FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``,
which counts 2 FLOPs per multiply-add; papers that quote "FLOPs" from fvcore (TimeSformer, the
IMD paper's Table 6) count multiply-adds, i.e. half of this number, and usually multiply by the
number of test views. Attention is counted through the math SDPA kernel so its matrix
products are seen on every device.

The frozen AST is counted separately (it runs once per clip, or not at all with an audio
cache), from transformers' default ``ASTConfig`` (AST-base, 1024 frames x 128 mel bins).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from avlabel.models.config import ModelConfig
from avlabel.models.model import MultimodalVideoTransformer, build_model


def count_parameters(model: MultimodalVideoTransformer) -> dict[str, int]:
    """Parameters per part: ``visual`` (streams + RGB/flow fusion), ``audio_bottleneck``,
    ``fusion`` (fusion head + classifier) and ``total``."""
    parts = {
        "visual": [model.streams, model.visual_fusion],
        "audio_bottleneck": [model.audio_bottleneck],
        "fusion": [model.fusion, model.head],
    }
    counts = {name: sum(_numel(module) for module in modules) for name, modules in parts.items()}
    counts["total"] = _numel(model)
    return counts


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """FLOPs (2 per multiply-add) of ``fn(*args, **kwargs)``, attention included."""
    return _counted(fn, *args, **kwargs)[1]


def model_complexity(config: ModelConfig, with_ast: bool = True) -> dict[str, Any]:
    """Parameters and forward GFLOPs of one view (one clip, one crop) of ``config``, per part.

    Returns:
        ``{"params": {...}, "gflops": {...}}`` with keys ``visual``, ``audio_bottleneck``,
        ``fusion`` and ``total`` (+ ``ast`` for the frozen AST when the model has audio and
        ``with_ast``); absent parts count 0.
    """
    with torch.device("meta"):
        model = build_model(config).eval()
    # Inputs and parameters live on the meta device; the forward runs outside the device
    # context, which would otherwise intercept every op.
    frames = {
        modality: torch.empty(1, chans, config.num_frames, config.img_size, config.img_size, device="meta")
        if modality in config.modalities
        else None
        for modality, chans in (("rgb", 3), ("flow", 2))
    }
    audio = torch.empty(1, config.audio_dim, device="meta") if config.has_audio else None
    visual, visual_flops = _counted(model.forward_visual, frames["rgb"], frames["flow"])
    (audio_embedding, present), audio_flops = _counted(model.forward_audio, audio, None)
    fused, fusion_flops = _counted(model.forward_fusion, visual, audio_embedding, present)
    head_flops = count_flops(model.head, fused.z)
    gflops = {
        "visual": visual_flops / 1e9,
        "audio_bottleneck": audio_flops / 1e9,
        "fusion": (fusion_flops + head_flops) / 1e9,
    }
    gflops["total"] = sum(gflops.values())
    params = count_parameters(model)
    if with_ast and config.has_audio:
        params["ast"], gflops["ast"] = _ast_complexity()
    return {"params": params, "gflops": gflops}


def _counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """``(fn(*args, **kwargs), its FLOPs)`` under the math attention kernel, without autograd."""
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter, torch.no_grad():
        result = fn(*args, **kwargs)
    return result, counter.get_total_flops()


@cache
def _ast_complexity() -> tuple[int, float]:
    """Parameters and GFLOPs of AST-base (transformers' default ``ASTConfig``) on one 10 s clip."""
    from transformers import ASTConfig, ASTModel

    config = ASTConfig()
    with torch.device("meta"):
        ast = ASTModel(config).eval()
    features = torch.empty(1, config.max_length, config.num_mel_bins, device="meta")
    flops = count_flops(ast, input_values=features)
    return _numel(ast), flops / 1e9


def _numel(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())
