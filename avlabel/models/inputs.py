"""What a batch hands the model: the one place training, evaluation and prediction pick its inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Keyword arguments of the models' forward that batches carry, by what the model reads of the
# audio cache (ModelConfig.audio_input): IMD's pooled embedding, or AVT's token sequence.
MODEL_INPUT_KEYS = {
    "embedding": ("rgb", "flow", "audio", "audio_present"),
    "tokens": ("rgb", "flow", "audio_tokens", "audio_token_valid"),
}


def model_inputs(batch: dict, device: torch.device, audio_input: str = "embedding") -> dict:
    """The model's keyword inputs of ``batch`` (the modalities it holds), moved to ``device``.

    Args:
        batch: a collated batch.
        device: where the model runs.
        audio_input: the model's ``config.audio_input``; a token batch also carries the pooled
            embedding (and the tokens' energy, which only the training objective reads).
    """
    return {key: batch[key].to(device, non_blocking=True) for key in MODEL_INPUT_KEYS[audio_input] if key in batch}
