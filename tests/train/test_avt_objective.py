"""AVT's objective: each loss against a hand-computed case, the masks and weights it uses, the model wiring."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from avlabel.models import build_model, model_config
from avlabel.models.outputs import ContrastiveEmbeddings, FusionOutput, MatchingOutput, Reconstruction
from avlabel.train.avt_objective import (
    PretextMasks,
    avt_objective,
    classification_loss,
    contrastive_loss,
    matching_loss,
    reconstruction_loss,
)
from avlabel.train.config import AvtConfig


def _unit(*angles):
    return torch.tensor([[math.cos(a), math.sin(a)] for a in angles])


def test_contrastive_loss_equals_a_hand_computed_case():
    # Two clips on the unit circle: video at 0 and 90 degrees, audio at 0 and 60 degrees, tau 0.5.
    video, audio = _unit(0.0, math.pi / 2), _unit(0.0, math.pi / 3)
    temperature = torch.tensor(0.5)
    loss = contrastive_loss(ContrastiveEmbeddings(video, audio, temperature), torch.tensor([True, True]), None)
    # Similarities: v0.a0 = 1, v0.a1 = cos 60 = 0.5, v1.a0 = 0, v1.a1 = cos 30.
    s00, s01, s10, s11 = 1.0, 0.5, 0.0, math.cos(math.pi / 6)

    def nll(positive, negative):  # -log softmax of the positive over {positive, negative}, at tau = 0.5
        return -math.log(math.exp(positive / 0.5) / (math.exp(positive / 0.5) + math.exp(negative / 0.5)))

    video_to_audio = (nll(s00, s01) + nll(s11, s10)) / 2
    audio_to_video = (nll(s00, s10) + nll(s11, s01)) / 2
    assert math.isclose(loss.item(), (video_to_audio + audio_to_video) / 2, rel_tol=1e-6)


def test_contrastive_loss_leaves_out_clips_without_audio_and_trains_the_temperature():
    torch.manual_seed(0)
    video = F.normalize(torch.randn(4, 8), dim=1).requires_grad_()
    audio = F.normalize(torch.randn(4, 8), dim=1)
    temperature = torch.tensor(0.07, requires_grad=True)
    include = torch.tensor([True, False, True, True])
    loss = contrastive_loss(ContrastiveEmbeddings(video, audio, temperature), include, None)
    kept = include.nonzero().squeeze(1)
    subset = contrastive_loss(
        ContrastiveEmbeddings(video[kept], audio[kept], temperature), torch.ones(3, dtype=torch.bool), None
    )
    torch.testing.assert_close(loss, subset)
    loss.backward()
    assert video.grad[1].abs().sum() == 0 and video.grad[0].abs().sum() > 0
    assert temperature.grad is not None and temperature.grad != 0
    # One clip with audio has no negative: nothing to learn, but still connected to the graph.
    lonely = contrastive_loss(
        ContrastiveEmbeddings(video, audio, temperature), torch.tensor([True, False, False, False]), None
    )
    assert lonely.item() == 0.0 and lonely.requires_grad


def test_matching_loss_weights_only_usable_pairs():
    logits = torch.tensor([[0.0, 2.0], [1.0, 0.0], [0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    matching = MatchingOutput(
        logits=logits,
        video_index=torch.tensor([0, 1, 0, 1, 2, 1]),
        audio_index=torch.tensor([0, 1, 1, 0, 0, 1]),  # pairs 0, 1, 5 match
        sampled=torch.tensor([True, True, True, True, True, False]),  # pair 5: a negative that was not drawn
    )
    valid = torch.tensor([True, True, False])  # clip 2 is a placeholder: pair 4 goes
    present = torch.tensor([True, True, True])
    loss = matching_loss(matching, valid, present)

    def ce(row, target):
        return -F.log_softmax(logits[row], 0)[target].item()

    expected = (ce(0, 1) + ce(1, 1) + ce(2, 0) + ce(3, 0)) / 4
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    # Audio absent for clip 1: every pair holding its audio goes too.
    without = matching_loss(matching, valid, torch.tensor([True, False, True]))
    assert math.isclose(without.item(), (ce(0, 1) + ce(3, 0)) / 2, rel_tol=1e-6)


def test_reconstruction_loss_reads_only_masked_tokens_of_valid_clips():
    target = torch.randn(2, 3, 4, 5)  # video: (B, T, N, P)
    prediction = target.clone()
    mask = torch.tensor([[True, False, False, True], [True, True, True, True]])
    valid = torch.tensor([True, False])
    prediction[0, :, 1] += 10.0  # an unmasked tube: ignored
    prediction[1] += 10.0  # a placeholder clip: ignored
    prediction[0, 2, 3] += 2.0  # one frame of a masked tube: (2^2) averaged over 2 tubes x 3 frames
    loss = reconstruction_loss(Reconstruction(prediction, target), mask, valid)
    assert math.isclose(loss.item(), 4.0 / 6, rel_tol=1e-6)
    audio_target = torch.randn(2, 6, 3)
    audio_prediction = audio_target + torch.tensor([0.0, 0.0, 3.0, 0.0, 0.0, 0.0])[None, :, None]
    audio_mask = torch.zeros(2, 6, dtype=torch.bool)
    audio_mask[0, 1:3] = True
    assert math.isclose(
        reconstruction_loss(
            Reconstruction(audio_prediction, audio_target), audio_mask, torch.tensor([True, True])
        ).item(),
        9.0 / 2,
    )


def test_classification_is_the_mean_of_the_present_streams_cross_entropies():
    logits = torch.randn(3, 2, 4)  # (B, streams: rgb, audio, C)
    labels = torch.tensor([0, 3, 1])
    mask = torch.tensor([[True, True], [True, False], [True, True]])  # clip 1 has no audio
    output = FusionOutput(logits=logits.mean(1), modality_logits=logits, modality_mask=mask)
    valid = torch.tensor([True, True, False])

    def ce(b, m):
        return F.cross_entropy(logits[b, m][None], labels[b][None]).item()

    expected = ((ce(0, 0) + ce(0, 1)) / 2 + ce(1, 0)) / 2
    assert math.isclose(classification_loss(output, labels, valid).item(), expected, rel_tol=1e-6)


def _output_with_every_term():
    torch.manual_seed(0)
    video, audio = F.normalize(torch.randn(2, 4), dim=1), F.normalize(torch.randn(2, 4), dim=1)
    rows = torch.arange(2)
    return FusionOutput(
        logits=torch.randn(2, 3),
        keep=torch.tensor([True, True]),
        modality_logits=torch.randn(2, 2, 3),
        modality_mask=torch.ones(2, 2, dtype=torch.bool),
        embeddings=ContrastiveEmbeddings(video, audio, torch.tensor(0.1)),
        matching=MatchingOutput(torch.randn(2, 2), rows, rows, torch.ones(2, dtype=torch.bool)),
        reconstructions={
            "rgb": Reconstruction(torch.randn(2, 1, 4, 6), torch.randn(2, 1, 4, 6)),
            "audio": Reconstruction(torch.randn(2, 5, 3), torch.randn(2, 5, 3)),
        },
    )


def test_the_total_is_the_weighted_sum_and_the_probe_trains_at_weight_one():
    output = _output_with_every_term()
    masks = PretextMasks(
        tubes={"rgb": torch.tensor([[True, False, True, False]] * 2)},
        audio_random=torch.tensor([[True, False, False, False, False]] * 2),
        audio_segment=torch.tensor([[False, True, True, False, False]] * 2),
    )
    labels, valid = torch.tensor([0, 2]), torch.ones(2, dtype=torch.bool)
    weights = {"contrastive": 0.5, "matching": 0.25, "masked_video": 2.0, "masked_audio": 3.0, "masked_segment": 0.1}
    avt = AvtConfig(classification_weight=0.7, **{f"{name}_weight": value for name, value in weights.items()})
    terms = avt_objective(output, labels, valid, avt, masks=masks)
    assert set(terms.pretext) == set(weights)
    expected = 0.7 * terms.ce + sum(weights[name] * term for name, term in terms.pretext.items())
    torch.testing.assert_close(terms.loss, expected)
    # The random and the segment tokens are scored apart.
    audio = output.reconstructions["audio"]
    torch.testing.assert_close(terms.pretext["masked_audio"], reconstruction_loss(audio, masks.audio_random, valid))
    torch.testing.assert_close(terms.pretext["masked_segment"], reconstruction_loss(audio, masks.audio_segment, valid))
    assert masks.model_kwargs(torch.device("cpu"))["audio_mask"].tolist() == [[True, True, True, False, False]] * 2
    probe = avt_objective(
        output,
        labels,
        valid,
        AvtConfig(
            classification_weight=0.0,
            contrastive_weight=0.5,
            **{f"{name}_weight": 0.0 for name in ("matching", "masked_video", "masked_audio", "masked_segment")},
        ),
    )
    torch.testing.assert_close(probe.loss, probe.ce + 0.5 * probe.pretext["contrastive"])
    validation = avt_objective(output, labels, valid, None)
    assert validation.pretext == {} and torch.equal(validation.loss, validation.ce)


@pytest.mark.parametrize("fusion", ["bottleneck", "full_attention"])
def test_every_parameter_of_a_model_trained_on_every_loss_gets_a_gradient(fusion):
    """No head without a loss (DDP would stall on a parameter that never gets a gradient)."""
    torch.manual_seed(0)
    config = model_config("avt_tiny", modalities=("rgb", "flow", "audio"), fusion=fusion, audio_tokens=10, audio_dim=12)
    model = build_model(config).train()
    batch = 4
    valid_tokens = torch.arange(10)[None, :] < torch.tensor([10, 6, 0, 8])[:, None]
    masks = PretextMasks(
        tubes={m: torch.rand(batch, 16) < 0.75 for m in ("rgb", "flow")},
        audio_random=(torch.rand(batch, 10) < 0.5) & valid_tokens,
        audio_segment=torch.zeros(batch, 10, dtype=torch.bool).index_fill_(1, torch.tensor([7]), True) & valid_tokens,
    )
    output = model(
        rgb=torch.randn(batch, 3, 4, 32, 32),
        flow=torch.randn(batch, 2, 4, 32, 32),
        audio_tokens=torch.randn(batch, 10, 12),
        audio_token_valid=valid_tokens,
        **masks.model_kwargs(torch.device("cpu")),
    )
    terms = avt_objective(
        output,
        torch.tensor([0, 1, 2, 3]),
        torch.ones(batch, dtype=torch.bool),
        AvtConfig(
            **{
                f"{name}_weight": 1.0
                for name in ("contrastive", "matching", "masked_video", "masked_audio", "masked_segment")
            }
        ),
        masks=masks,
    )
    assert all(term.isfinite() and term > 0 for term in terms.pretext.values()), terms.pretext
    terms.loss.backward()
    missing = [name for name, parameter in model.named_parameters() if parameter.grad is None]
    assert missing == []


_GATHER_SCRIPT = """
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from avlabel.models.outputs import ContrastiveEmbeddings
from avlabel.train.avt_objective import contrastive_loss
from avlabel.train.distributed import setup_distributed, teardown_distributed

ctx = setup_distributed("cpu")
torch.manual_seed(0)  # the same data and weights on every rank
video_in, audio_in = torch.randn(6, 5), torch.randn(6, 5)
include = torch.tensor([True, True, True, True, False, True])  # clip 4 (on rank 1) has no audio


class Towers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.video, self.audio = torch.nn.Linear(5, 4), torch.nn.Linear(5, 4)
        self.temperature = torch.nn.Parameter(torch.tensor(0.2))

    def forward(self, video, audio):
        return ContrastiveEmbeddings(
            F.normalize(self.video(video), dim=1), F.normalize(self.audio(audio), dim=1), self.temperature
        )


towers = Towers()
reference = {name: value.clone() for name, value in towers.state_dict().items()}
mine = slice(3 * ctx.rank, 3 * ctx.rank + 3)
model = DistributedDataParallel(towers)
loss = contrastive_loss(model(video_in[mine], audio_in[mine]), include[mine], ctx)
loss.backward()
result = {"loss": loss.item(), "grads": {n: p.grad.tolist() for n, p in towers.named_parameters()}}
if ctx.rank == 0:  # the same global batch in one process
    single = Towers()
    single.load_state_dict(reference)
    whole = contrastive_loss(single(video_in, audio_in), include, None)
    whole.backward()
    result["single"] = {"loss": whole.item(), "grads": {n: p.grad.tolist() for n, p in single.named_parameters()}}
del model  # DDP holds the process group: alive past teardown, its gloo threads can abort the exit
teardown_distributed()
with open(os.path.join(sys.argv[1], f"rank{ctx.rank}.json"), "w") as handle:
    json.dump(result, handle)
"""


def test_contrastive_negatives_are_gathered_across_two_gloo_ranks_with_exact_gradients(tmp_path):
    """Two ranks of 3 clips give the loss and the (DDP-averaged) gradients of one process with all 6."""
    import json

    from .conftest import torchrun_two_ranks

    script = tmp_path / "gather.py"
    script.write_text(_GATHER_SCRIPT)
    finished = torchrun_two_ranks(str(script), str(tmp_path))
    assert finished.returncode == 0, finished.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    single = ranks[0]["single"]
    for rank in ranks:
        assert math.isclose(rank["loss"], single["loss"], rel_tol=1e-6)
        for name, grad in single["grads"].items():
            torch.testing.assert_close(torch.tensor(rank["grads"][name]), torch.tensor(grad), rtol=1e-5, atol=1e-6)
