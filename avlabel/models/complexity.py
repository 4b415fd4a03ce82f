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

import dataclasses
from collections.abc import Callable
from functools import cache
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from avlabel.models.config import ModelConfig
from avlabel.models.model import build_model

# Model part -> the submodule names it covers, in both families; everything else is "fusion"
# (fusion head or bottleneck tokens, classifier, self-supervised heads).
_PARTS = {
    "visual": ("streams.rgb", "streams.flow", "visual_fusion"),
    "audio": ("streams.audio", "audio_bottleneck"),
}


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters per part: ``visual`` (video streams + RGB/flow fusion), ``audio`` (IMD's audio
    bottleneck or AVT's audio token stream), ``fusion`` (everything else: fusion head or
    bottleneck tokens, classifier, self-supervised heads) and ``total``."""
    counts = dict.fromkeys((*_PARTS, "fusion"), 0)
    for name, parameter in model.named_parameters():
        counts[_part_of(name)] += parameter.numel()
    counts["total"] = sum(counts.values())
    return counts


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """FLOPs (2 per multiply-add) of ``fn(*args, **kwargs)``, attention included."""
    return _counted(fn, *args, **kwargs)[1]


def model_complexity(config: ModelConfig, with_ast: bool = True) -> dict[str, Any]:
    """Parameters and forward GFLOPs of one view (one clip, one crop) of ``config``, per part.

    The forward is the evaluation forward of the model (for AVT: classification, the
    contrastive embeddings and the matching head on the clip's own pair; no masked pass).
    FLOPs are attributed to the part whose submodule ran them; what the model computes outside
    its submodules (the cross-stream projections and attention of AVT's full-attention layers)
    counts as fusion.

    Returns:
        ``{"params": {...}, "gflops": {...}}`` with keys ``visual``, ``audio``, ``fusion`` and
        ``total`` (+ ``ast`` for the frozen AST when the model has audio and ``with_ast``);
        absent parts count 0.
    """
    with torch.device("meta"):
        model = build_model(config).eval()
    # Inputs and parameters live on the meta device; the forward runs outside the device
    # context, which would otherwise intercept every op.
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter, torch.no_grad():
        model(**example_inputs(config, batch=1, device="meta"))
    per_module = {name: sum(counts.values()) for name, counts in counter.get_flop_counts().items()}
    root = type(model).__name__
    gflops = dict.fromkeys((*_PARTS, "fusion"), 0.0)
    for name, flops in per_module.items():
        parts = name.split(".")
        ancestors = {".".join(parts[:end]) for end in range(2, len(parts))}  # below the root
        # A module's count includes its descendants': count the outermost modules below the root only.
        if name in ("Global", root) or ancestors & per_module.keys():
            continue
        gflops[_part_of(name.removeprefix(f"{root}."))] += flops / 1e9
    # What the model computes outside any submodule (AVT's full-attention layers project and
    # attend across streams with their blocks' weights) is the fusion's cost.
    gflops["fusion"] += per_module.get("Global", 0) / 1e9 - sum(gflops.values())
    gflops["total"] = per_module.get("Global", 0) / 1e9
    params = count_parameters(model)
    if with_ast and config.has_audio:
        params["ast"], gflops["ast"] = _ast_complexity()
    return {"params": params, "gflops": gflops}


def fusion_flops(
    config: ModelConfig,
    bottlenecks: tuple[int, ...] = (1, 4, 16, 64),
    fusion_layers: tuple[int, ...] = (0, 4, 8, 10),
) -> list[dict[str, Any]]:
    """Forward GFLOPs of one view of ``config``'s AVT geometry under every way of fusing its streams.

    Late fusion (no exchange: ``fusion_layer = depth``), MBT's bottleneck with each number of
    tokens from each fusion layer on, and full cross-modal attention from each fusion layer on;
    classification only (no self-supervised head), AST not counted.

    Returns:
        One row per variant: ``fusion`` ("late", "bottleneck", "full_attention"),
        ``n_bottleneck`` (None unless bottleneck), ``fusion_layer``, ``gflops`` and
        ``extra_gflops`` (over late fusion).
    """
    base = dataclasses.replace(config, pretext_heads=())
    variants = [("late", None, base.depth)]
    variants += [("bottleneck", k, layer) for layer in fusion_layers for k in bottlenecks]
    variants += [("full_attention", None, layer) for layer in fusion_layers]
    rows = []
    for fusion, bottleneck, layer in variants:
        variant = dataclasses.replace(
            base,
            fusion="bottleneck" if fusion == "late" else fusion,
            n_bottleneck=bottleneck or base.n_bottleneck,
            fusion_layer=layer,
        )
        gflops = model_complexity(variant, with_ast=False)["gflops"]["total"]
        rows.append({"fusion": fusion, "n_bottleneck": bottleneck, "fusion_layer": layer, "gflops": gflops})
    for row in rows:
        row["extra_gflops"] = row["gflops"] - rows[0]["gflops"]
    return rows


def example_inputs(config: ModelConfig, batch: int = 1, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Inputs of ``config``'s model for ``batch`` clips (empty tensors: for shapes and counting)."""
    inputs = {
        modality: torch.empty(batch, chans, config.num_frames, config.img_size, config.img_size, device=device)
        for modality, chans in (("rgb", 3), ("flow", 2))
        if modality in config.modalities
    }
    if config.has_audio and config.audio_input == "tokens":
        inputs["audio_tokens"] = torch.empty(batch, config.audio_tokens, config.audio_dim, device=device)
        inputs["audio_token_valid"] = torch.ones(batch, config.audio_tokens, dtype=torch.bool, device=device)
    elif config.has_audio:
        inputs["audio"] = torch.empty(batch, config.audio_dim, device=device)
    return inputs


def _part_of(name: str) -> str:
    for part, prefixes in _PARTS.items():
        if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes):
            return part
    return "fusion"


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


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
