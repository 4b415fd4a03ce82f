"""The visual stream (Eqs. 1-3): spatial blocks keep frames apart, space-time blocks mix them."""

from __future__ import annotations

import pytest
import torch

from avlabel.models import build_model, model_config
from avlabel.models.video_vit import SpaceBlock, SpaceTimeBlock, _LayerNorm


@pytest.fixture(scope="module")
def stream():
    torch.manual_seed(0)
    stream = build_model(model_config("imd_tiny", modalities=("rgb",))).streams["rgb"].eval()
    # LR starts at zero (image equivalence); give it weights so the temporal branch does something.
    for block in stream.blocks:
        if isinstance(block, SpaceTimeBlock):
            torch.nn.init.normal_(block.time_fc.weight, std=0.1)
    return stream


def _block_outputs(stream, video):
    outputs = []
    hooks = [block.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for block in stream.blocks]
    try:
        with torch.no_grad():
            stream.forward_features(video)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs  # one (B, T, S, D) tensor per block


def test_block_layout_is_spatial_then_space_time(stream):
    kinds = [type(block) for block in stream.blocks]
    assert kinds == [SpaceBlock, SpaceBlock, SpaceTimeBlock, SpaceTimeBlock]


def test_spatial_blocks_do_not_mix_frames_but_space_time_blocks_do(stream):
    torch.manual_seed(1)
    video = torch.randn(2, 3, 4, 32, 32)
    perturbed = video.clone()
    perturbed[:, :, 1] += torch.randn_like(perturbed[:, :, 1])  # change frame 1 only
    before, after = _block_outputs(stream, video), _block_outputs(stream, perturbed)
    others = [0, 2, 3]
    last_spatial = 1  # blocks 0-1 are spatial, 2-3 space-time
    for index in range(last_spatial + 1):
        torch.testing.assert_close(after[index][:, others], before[index][:, others], rtol=0, atol=0)
        assert not torch.allclose(after[index][:, 1], before[index][:, 1])
    first_space_time = last_spatial + 1
    for index in range(first_space_time, len(stream.blocks)):
        assert (after[index][:, others] - before[index][:, others]).abs().amax() > 1e-4


def test_zero_lr_space_time_block_is_a_per_frame_image_block():
    torch.manual_seed(2)
    block = SpaceTimeBlock(dim=16, num_heads=2).eval()
    block.init_weights()
    image_block = SpaceBlock(dim=16, num_heads=2, qkv_bias=True, norm_layer=_LayerNorm).eval()
    temporal = ("norm_time.", "attn_time.", "time_fc.")
    spatial_weights = {k: v for k, v in block.state_dict().items() if not k.startswith(temporal)}
    image_block.load_state_dict(spatial_weights, strict=True)
    x = torch.randn(2, 3, 5, 16)  # (B, T, S, D)
    with torch.no_grad():
        torch.testing.assert_close(block(x), image_block(x))


def test_other_frame_counts_interpolate_the_temporal_embedding(stream):
    with torch.no_grad():
        assert stream(torch.randn(1, 3, 6, 32, 32)).shape == (1, 64)
        assert stream(torch.randn(1, 3, 1, 32, 32)).shape == (1, 64)


def test_activation_checkpointing_gives_the_same_values_and_gradients():
    torch.manual_seed(3)
    model = build_model(model_config("imd_tiny", modalities=("rgb",)))
    video = torch.randn(2, 3, 4, 32, 32)

    def run():
        model.zero_grad()
        loss = model(rgb=video).logits.square().sum()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    loss, grads = run()
    model.set_grad_checkpointing(True)
    loss_ckpt, grads_ckpt = run()
    torch.testing.assert_close(loss_ckpt, loss)
    for grad, grad_ckpt in zip(grads, grads_ckpt, strict=True):
        torch.testing.assert_close(grad_ckpt, grad)
