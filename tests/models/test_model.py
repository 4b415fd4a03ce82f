"""The full model: shapes for every modality subset, fusion heads, input checks, bf16, compile, sizes."""

from __future__ import annotations

import itertools

import pytest
import torch

from avlabel.errors import AvlabelError
from avlabel.models import FUSION_NAMES, FusionOutput, build_model, model_config

B, T, SIZE, CLASSES = 3, 4, 32, 10
SUBSETS = [subset for size in (1, 2, 3) for subset in itertools.combinations(("rgb", "flow", "audio"), size)]


def _inputs(modalities, batch=B, frames=T):
    torch.manual_seed(0)
    inputs = {
        "rgb": torch.randn(batch, 3, frames, SIZE, SIZE) if "rgb" in modalities else None,
        "flow": torch.randn(batch, 2, frames, SIZE, SIZE) if "flow" in modalities else None,
        "audio": torch.randn(batch, 768) if "audio" in modalities else None,
    }
    return {key: value for key, value in inputs.items() if value is not None}


@pytest.mark.parametrize("modalities", SUBSETS, ids="+".join)
def test_every_modality_subset_gives_logits_of_the_right_shape(modalities):
    model = build_model(model_config("imd_tiny", modalities=modalities)).eval()
    with torch.no_grad():
        out = model(**_inputs(modalities))
    assert isinstance(out, FusionOutput)
    assert out.logits.shape == (B, CLASSES) and out.logits.isfinite().all()
    audio_visual = "audio" in modalities and len(modalities) > 1
    for name in ("rev", "rev_logit", "delta"):
        value = getattr(out, name)
        assert (value.shape == (B,)) if audio_visual else value is None, name
    if "audio" in modalities:
        assert out.keep.shape == (B,) and out.keep.dtype == torch.bool
    else:
        assert out.keep is None
    assert out.aux_loss is None
    assert (model.visual_fusion is not None) == ({"rgb", "flow"} <= set(modalities))


def test_timesformer_family_runs():
    model = build_model(model_config("timesformer_tiny")).eval()
    with torch.no_grad():
        assert model(**_inputs(("rgb",))).logits.shape == (B, CLASSES)


@pytest.mark.parametrize("fusion", FUSION_NAMES)
def test_every_fusion_head_trains_end_to_end(fusion):
    torch.manual_seed(0)  # drop_pathway draws its training masks from torch's generator
    model = build_model(model_config("imd_tiny", fusion=fusion)).train()
    present = torch.tensor([True, False, True])
    out = model(**_inputs(("rgb", "flow", "audio")), audio_present=present)
    assert out.logits.shape == (B, CLASSES)
    assert out.keep is not None and not out.keep[1]
    loss = torch.nn.functional.cross_entropy(out.logits, torch.tensor([1, 2, 3]))
    if fusion == "imd":
        loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(out.rev_logit, torch.ones(B))
    if fusion == "avc":
        assert out.aux_loss is not None and out.aux_loss.ndim == 0 and out.aux_loss > 0
        loss = loss + out.aux_loss
    else:
        assert out.aux_loss is None
    loss.backward()
    for part in ("streams", "visual_fusion", "audio_bottleneck", "fusion", "head"):
        grads = [p.grad for p in getattr(model, part).parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), part
    assert all(p.grad is None or p.grad.isfinite().all() for p in model.parameters())
    with torch.no_grad():
        assert model.eval()(**_inputs(("rgb", "flow", "audio"))).aux_loss is None


@pytest.mark.parametrize("fusion", FUSION_NAMES)
def test_clips_without_audio_ignore_their_audio_input(fusion):
    """Absent audio is masked like dropped audio: its values (even NaN) never reach the logits."""
    model = build_model(model_config("imd_tiny", fusion=fusion)).eval()
    inputs = _inputs(("rgb", "flow", "audio"))
    present = torch.tensor([True, False, True])
    audio = inputs.pop("audio").requires_grad_(True)
    out = model(**inputs, audio=audio, audio_present=present)
    out.logits.sum().backward()
    assert (audio.grad[1] == 0).all() and audio.grad[0].abs().sum() > 0
    garbage = audio.detach().clone()
    garbage[1] = float("nan")
    with torch.no_grad():
        again = model(**inputs, audio=garbage, audio_present=present)
    torch.testing.assert_close(again.logits, out.logits.detach(), rtol=0, atol=0)


def test_audio_only_model_masks_absent_audio():
    model = build_model(model_config("imd_tiny", modalities=("audio",))).eval()
    audio = torch.randn(2, 768)
    with torch.no_grad():
        out = model(audio=audio, audio_present=torch.tensor([True, False]))
        silent = model(audio=torch.zeros(2, 768), audio_present=torch.tensor([False, False]))
    assert out.keep.tolist() == [True, False]
    torch.testing.assert_close(out.logits[1], silent.logits[1])


def test_cached_fp16_audio_is_accepted():
    model = build_model(model_config("imd_tiny", modalities=("rgb", "audio"))).eval()
    inputs = _inputs(("rgb", "audio"))
    with torch.no_grad():
        half = model(rgb=inputs["rgb"], audio=inputs["audio"].half()).logits
        full = model(rgb=inputs["rgb"], audio=inputs["audio"].half().float()).logits
    torch.testing.assert_close(half, full)


@pytest.mark.parametrize(
    ("modalities", "call", "message"),
    [
        (("rgb", "audio"), {"rgb"}, "uses audio but no audio input was passed"),
        (("rgb",), {"rgb", "flow"}, "has no flow input"),
        (("rgb", "flow"), {"flow"}, "uses rgb but no rgb input"),
    ],
)
def test_missing_or_unexpected_modalities_are_user_errors(modalities, call, message):
    model = build_model(model_config("imd_tiny", modalities=modalities))
    with pytest.raises(AvlabelError, match=message):
        model(**_inputs(call))


def test_bf16_autocast_forward_and_backward():
    model = build_model(model_config("imd_tiny"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**_inputs(("rgb", "flow", "audio")))
        loss = out.logits.float().logsumexp(-1).mean() + out.rev_logit.float().mean()
    loss.backward()
    assert out.logits.dtype == torch.bfloat16 and out.keep.dtype == torch.bool
    assert all(p.grad is None or p.grad.isfinite().all() for p in model.parameters())


@pytest.mark.slow
def test_torch_compile_captures_one_graph():
    """Full-graph capture (no graph breaks) with the cheap aot_eager backend."""
    model = build_model(model_config("imd_tiny", grad_checkpointing=True)).train()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    inputs = _inputs(("rgb", "flow", "audio"))
    present = torch.tensor([True, False, True])
    out = compiled(**inputs, audio_present=present)
    out.logits.sum().backward()
    torch.testing.assert_close(out.logits, model(**inputs, audio_present=present).logits)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["imd", "avc"])
def test_torch_compile_inductor(fusion):
    model = build_model(model_config("imd_tiny", fusion=fusion)).eval()
    compiled = torch.compile(model)
    inputs = _inputs(("rgb", "flow", "audio"))
    with torch.no_grad():
        torch.testing.assert_close(compiled(**inputs).logits, model(**inputs).logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("name", "timm_name"), [("imd_b", "vit_base_patch16_224"), ("imd_l", "vit_large_patch16_224")])
def test_parameter_counts_match_two_vits_plus_the_temporal_parts(name, timm_name):
    """Each stream is the timm ViT (less its classifier) plus T temporal embeddings and, per
    space-time block, a LayerNorm, a temporal attention and LR; flow's patch filter has 2 channels."""
    import timm

    config = model_config(name)
    with torch.device("meta"):
        model = build_model(config)
        vit = timm.create_model(timm_name, num_classes=0)
    vit_params = sum(p.numel() for p in vit.parameters())
    d, p = config.embed_dim, config.patch_size
    # norm_time + attn_time (qkv, proj) + LR, per space-time block
    per_block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * d + d)
    temporal = config.num_frames * d + config.space_time_blocks * per_block
    rgb = sum(x.numel() for x in model.streams["rgb"].parameters())
    flow = sum(x.numel() for x in model.streams["flow"].parameters())
    assert rgb == vit_params + temporal
    assert flow == rgb - d * p * p  # one input channel fewer
    expected_vit = {"imd_b": 85_798_656, "imd_l": 303_301_632}[name]  # ViT-B/16, ViT-L/16 without head
    assert vit_params == expected_vit
