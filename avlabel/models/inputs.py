"""What a batch hands the model: the one place training, evaluation and prediction pick its inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Keyword arguments of MultimodalVideoTransformer.forward that batches carry.
MODEL_INPUT_KEYS = ("rgb", "flow", "audio", "audio_present")


def model_inputs(batch: dict, device: torch.device) -> dict:
    """The model's keyword inputs of ``batch`` (the modalities it holds), moved to ``device``."""
    return {key: batch[key].to(device, non_blocking=True) for key in MODEL_INPUT_KEYS if key in batch}
