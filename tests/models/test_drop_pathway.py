"""Random audio dropout (DropPathway): its rate in training, nothing dropped in evaluation, exact
zeros for dropped audio, and IMD's fusion layers (the comparison with IMD is about the gate only)."""

from __future__ import annotations

import pytest
import torch

from avlabel.errors import AvlabelError
from avlabel.models import build_model, model_config
from avlabel.models.fusion import DropPathwayFusion
from avlabel.models.imd import IMDFusion

D = 8


def _embeddings(batch: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, D, generator=generator), torch.randn(batch, D, generator=generator)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.8])
def test_training_drops_each_clip_with_probability_p_and_never_keeps_absent_audio(p):
    head = DropPathwayFusion(D, p=p).train()
    visual, audio = _embeddings(20_000)
    present = torch.arange(20_000) % 10 != 0  # every tenth clip has no audio
    torch.manual_seed(0)
    out = head(visual, audio, present)
    assert not out.keep[~present].any()
    assert out.keep[present].float().mean().item() == pytest.approx(1 - p, abs=0.015)
    assert torch.equal(out.delta, out.keep.float())
    assert out.rev is None and out.rev_logit is None  # no relevance network, no relevance loss


def test_evaluation_keeps_all_audio_and_draws_nothing():
    head = DropPathwayFusion(D, p=0.9).eval()
    visual, audio = _embeddings(64)
    present = torch.arange(64) % 4 != 0
    state = torch.get_rng_state()
    out = head(visual, audio, present)
    assert torch.equal(out.keep, present)
    assert torch.equal(torch.get_rng_state(), state)  # testing is deterministic


def test_dropped_audio_gets_exactly_zero_gradient_and_matches_absent_audio():
    head = DropPathwayFusion(D, p=0.5).train()
    visual, audio = _embeddings(32)
    audio.requires_grad_(True)
    present = torch.ones(32, dtype=torch.bool)
    torch.manual_seed(3)
    out = head(visual, audio, present)
    out.z.square().sum().backward()
    dropped = ~out.keep
    assert dropped.any() and out.keep.any()
    assert (audio.grad[dropped] == 0).all() and (audio.grad[out.keep].abs().sum(dim=1) > 0).all()
    with torch.no_grad():
        as_absent = head.eval()(visual, audio, out.keep)  # the kept clips, the others as if silent
    torch.testing.assert_close(out.z.detach(), as_absent.z, rtol=0, atol=0)


def test_it_is_imds_fusion_layers_with_a_coin_for_a_gate():
    """Same parameters as IMD minus the relevance network; with IMD's weights and the gate at 1
    (IMD in mode W with a relevance of exactly 1) both heads compute the same embedding."""
    torch.manual_seed(0)
    imd, drop = IMDFusion(D, mode="W"), DropPathwayFusion(D, p=0.5)
    imd_keys = {key for key in imd.state_dict() if not key.startswith("relevance.")}
    assert set(drop.state_dict()) == imd_keys
    drop.load_state_dict({key: value for key, value in imd.state_dict().items() if key in imd_keys})
    with torch.no_grad():
        imd.relevance.score.weight.zero_()
        imd.relevance.score.bias.fill_(50.0)  # sigmoid(50) == 1 in float32
        visual, audio = _embeddings(16)
        present = torch.ones(16, dtype=torch.bool)
        torch.testing.assert_close(
            drop.eval()(visual, audio, present).z, imd.eval()(visual, audio, present).z, rtol=0, atol=0
        )


def test_model_config_builds_it_and_validates_p():
    model = build_model(model_config("imd_tiny", fusion="drop_pathway", drop_pathway_p=0.25))
    assert isinstance(model.fusion, DropPathwayFusion) and model.fusion.p == 0.25
    with pytest.raises(AvlabelError, match=r"model\.drop_pathway_p: 1\.0 must lie in \[0, 1\)"):
        model_config("imd_tiny", fusion="drop_pathway", drop_pathway_p=1.0)
