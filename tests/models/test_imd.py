"""IMD (Eqs. 4-8): masking (M) and weighting (W) semantics, exact zero gradient for dropped audio."""

from __future__ import annotations

import pytest
import torch

from avlabel.models import build_model, model_config

B = 6


@pytest.fixture(scope="module")
def inputs():
    torch.manual_seed(0)
    return {"rgb": torch.randn(B, 3, 4, 32, 32), "flow": torch.randn(B, 2, 4, 32, 32), "audio": torch.randn(B, 768)}


def _model(mode: str):
    torch.manual_seed(1)
    model = build_model(model_config("imd_tiny", imd_mode=mode)).eval()
    # Spread the relevance scores so a threshold splits the batch (init puts them all near 0.5).
    torch.nn.init.normal_(model.fusion.relevance.score.weight, std=0.5)
    return model


def _split_threshold(model, inputs):
    """An alpha between the 3rd and 4th smallest relevance: 3 clips below it, 3 above."""
    with torch.no_grad():
        rev = model(**inputs).rev.sort().values
    assert rev[2] < rev[3]
    return float((rev[2] + rev[3]) / 2)


def _forward_with_grad(model, inputs, present=None):
    audio = inputs["audio"].clone().requires_grad_(True)
    out = model(rgb=inputs["rgb"], flow=inputs["flow"], audio=audio, audio_present=present)
    out.logits.square().sum().backward()
    return out, audio.grad


def test_masking_mode_drops_audio_below_alpha_with_exactly_zero_gradient(inputs):
    model = _model("M")
    model.fusion.alpha = _split_threshold(model, inputs)
    out, audio_grad = _forward_with_grad(model, inputs)
    torch.testing.assert_close(out.rev, torch.sigmoid(out.rev_logit))
    assert torch.equal(out.keep, out.rev >= model.fusion.alpha) and out.keep.sum() == 3
    torch.testing.assert_close(out.delta, torch.where(out.keep, out.rev, torch.zeros_like(out.rev)), rtol=0, atol=0)
    dropped = ~out.keep
    assert (out.delta[dropped] == 0).all()
    assert (audio_grad[dropped] == 0).all(), "dropped audio must receive exactly zero gradient"
    assert (audio_grad[out.keep].abs().sum(dim=1) > 0).all()


def test_dropped_audio_contributes_nothing_to_the_logits(inputs):
    model = _model("M")
    with torch.no_grad():
        model.fusion.alpha = 1.0  # sigmoid < 1: every clip's audio is dropped
        dropped = model(**inputs)
        no_audio = model(**inputs, audio_present=torch.zeros(B, dtype=torch.bool))
        other_audio = model(rgb=inputs["rgb"], flow=inputs["flow"], audio=torch.randn(B, 768) * 5)
    assert not dropped.keep.any()
    torch.testing.assert_close(dropped.logits, no_audio.logits, rtol=0, atol=0)
    torch.testing.assert_close(dropped.logits, other_audio.logits, rtol=0, atol=0)
    # ... and the classification loss then trains nothing on the audio side.
    model.zero_grad()
    model(**inputs).logits.sum().backward()
    for parameter in model.audio_bottleneck.parameters():
        assert parameter.grad is None or (parameter.grad == 0).all()


def test_weighting_mode_scales_every_present_clip_by_its_relevance(inputs):
    model = _model("W")
    model.fusion.alpha = _split_threshold(model, inputs)  # ignored in W mode
    present = torch.tensor([True, True, True, True, False, True])
    out, audio_grad = _forward_with_grad(model, inputs, present)
    assert torch.equal(out.keep, present)
    torch.testing.assert_close(out.delta[present], out.rev[present], rtol=0, atol=0)
    assert out.delta[4] == 0 and (audio_grad[4] == 0).all()
    assert (audio_grad[present].abs().sum(dim=1) > 0).all()


def test_masking_mode_absent_audio_is_dropped_even_when_judged_relevant(inputs):
    model = _model("M")
    model.fusion.alpha = 0.0  # every clip with audio is kept
    present = torch.tensor([False, True, True, True, True, False])
    out, audio_grad = _forward_with_grad(model, inputs, present)
    assert torch.equal(out.keep, present)
    assert (audio_grad[~present] == 0).all() and (out.delta[~present] == 0).all()


def test_relevance_logit_trains_the_relevance_network(inputs):
    """rev_logit is what the BCE relevance loss (Sec. 3.5) back-propagates through."""
    model = _model("M")
    out = model(**inputs)
    torch.nn.functional.binary_cross_entropy_with_logits(out.rev_logit, torch.ones(B)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.fusion.relevance.parameters())
    assert model.fusion.fuse.fc1.weight.grad is None  # the fusion MLP is not involved
