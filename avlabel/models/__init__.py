"""Models: the two-stream video Transformer, audio bottleneck, IMD, the fusion baselines and AVT.

``from avlabel.models import ModelConfig, build_model, list_models, model_config`` is the
entry point. Config names are importable without torch; everything that needs torch or timm
(``build_model``, ``load_pretrained``, ...) is imported on first use, so reading or validating
a config stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from avlabel.models.config import (
    FUSION_NAMES,
    MODALITIES,
    PRETEXT_HEADS,
    TOKEN_FUSION_NAMES,
    ModelConfig,
    list_models,
    model_config,
)

# public name -> module that defines it (imported on first access, PEP 562).
_LAZY = {
    "build_model": "avlabel.models.model",
    "MultimodalVideoTransformer": "avlabel.models.model",
    "AudioVideoTransformer": "avlabel.models.avt",
    "FusionOutput": "avlabel.models.outputs",
    "FusedEmbedding": "avlabel.models.outputs",
    "FUSION_HEADS": "avlabel.models.fusion",
    "filter_state_dict": "avlabel.models.pretrained",
    "load_pretrained": "avlabel.models.pretrained",
    "pretrained_rgb_statistics": "avlabel.models.pretrained",
    "LoadReport": "avlabel.models.pretrained",
    "count_parameters": "avlabel.models.complexity",
    "count_flops": "avlabel.models.complexity",
    "model_complexity": "avlabel.models.complexity",
    "example_inputs": "avlabel.models.complexity",
    "fusion_flops": "avlabel.models.complexity",
}

__all__ = [
    "FUSION_NAMES",
    "MODALITIES",
    "PRETEXT_HEADS",
    "TOKEN_FUSION_NAMES",
    "ModelConfig",
    "list_models",
    "model_config",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'avlabel.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
