"""What the model receives: RGB normalised with the statistics its checkpoint records.

A checkpoint whose config says mean = std = 0.5 (timm's augreg ViTs) must see those values in
``predict`` and ``eval``; a checkpoint written before the statistics were recorded was trained on
ImageNet-normalised frames and must keep getting them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avlabel.data.manifest import ClipRecord, write_manifest
from avlabel.data.writer import write_clip
from avlabel.evaluate.evaluation import evaluate_run
from avlabel.evaluate.multiview import ViewGrid
from avlabel.evaluate.prediction import predict_video
from avlabel.models import build_model, model_config
from avlabel.models.config import IMAGENET_MEAN, IMAGENET_STD
from avlabel.models.video_vit import VideoViT
from avlabel.train.checkpoint import save_checkpoint

COLOUR = (255, 51, 0)  # pixels / 255 = (1.0, 0.2, 0.0)


def _checkpoint(tmp_path, predates=(), **overrides):
    """A tiny RGB-only checkpoint; ``predates`` leaves fields out of its config, as older checkpoints do."""
    config = model_config(
        "imd_tiny",
        modalities=("rgb",),
        num_classes=2,
        depth=2,
        embed_dim=32,
        num_heads=2,
        audio_hidden_dim=32,
        space_time_blocks=1,
        **overrides,
    )
    model = build_model(config)
    saved = {key: value for key, value in config.to_dict().items() if key not in predates}
    state = {"model_config": saved, "classes": ["whistling", "applauding"], "label_set": "two"}
    return save_checkpoint(tmp_path / "run", "best", model, torch.optim.SGD(model.parameters(), lr=0.1), None, state)


def _received_rgb(run):
    """Call ``run()`` and return the mean per channel of every RGB clip the model's stream received."""
    received = []

    def capture(module, args):
        if isinstance(module, VideoViT):
            received.append(args[0].detach().flatten(2).mean(-1))  # (B, 3)

    handle = torch.nn.modules.module.register_module_forward_pre_hook(capture)
    try:
        run()
    finally:
        handle.remove()
    return torch.cat(received)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    frames = np.broadcast_to(np.array(COLOUR, dtype=np.uint8), (12, 32, 32, 3)).copy()
    return write_clip(tmp_path_factory.mktemp("video") / "orange.mp4", frames, fps=25, video_options={"qp": "0"})


@pytest.mark.parametrize(
    ("settings", "mean", "std"),
    [
        ({"rgb_mean": (0.5, 0.5, 0.5), "rgb_std": (0.5, 0.5, 0.5)}, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ({"predates": ("rgb_mean", "rgb_std")}, IMAGENET_MEAN, IMAGENET_STD),
    ],
    ids=["recorded-0.5", "older-checkpoint-imagenet"],
)
def test_predict_and_eval_normalise_rgb_as_the_checkpoint_says(tmp_path, video, settings, mean, std):
    checkpoint = _checkpoint(tmp_path, **settings)
    one_view = ViewGrid(spatial_crops=1, temporal_clips=1)

    def pixels(received: torch.Tensor) -> torch.Tensor:
        """Undo ``(pixel / 255 - mean) / std`` with the statistics the checkpoint should have used."""
        return (received * torch.tensor(std) + torch.tensor(mean)) * 255

    predicted = _received_rgb(lambda: predict_video(video, checkpoint, views=one_view))
    # Within 3 levels (RGB -> 4:2:0 YUV -> RGB rounding); other statistics are 30+ levels off.
    torch.testing.assert_close(pixels(predicted), torch.tensor([COLOUR], dtype=torch.float32), atol=3.0, rtol=0)

    manifest = tmp_path / "manifest.csv"
    write_manifest([ClipRecord("orange", video, "whistling", "test")], manifest)
    evaluated = _received_rgb(
        lambda: evaluate_run(
            checkpoint, manifest, views=one_view, output_dir=tmp_path / "eval", workers=0, progress=False
        )
    )
    torch.testing.assert_close(pixels(evaluated), torch.tensor([COLOUR], dtype=torch.float32), atol=3.0, rtol=0)
