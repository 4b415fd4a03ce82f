"""The IMD objective (section 3.5): class CE + lambda * relevance BCE (+ a head's auxiliary loss)."""

from __future__ import annotations

import math

import torch

from avlabel.models.outputs import FusionOutput
from avlabel.train.objective import imd_objective


def _output(logits, rev_logit=None, aux_loss=None):
    return FusionOutput(logits=logits, rev_logit=rev_logit, aux_loss=aux_loss)


def test_terms_match_hand_computed_values():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    rev_logit = torch.tensor([0.0, math.log(3.0)])  # sigmoid: 0.5 and 0.75
    target = torch.tensor([1.0, 0.25])
    terms = imd_objective(_output(logits, rev_logit), labels, target, relevance_weight=0.5)

    ce = (-math.log(math.exp(2) / (math.exp(2) + 2)) - math.log(1 / (2 + math.e))) / 2
    bce = (-math.log(0.5) - (0.25 * math.log(0.75) + 0.75 * math.log(0.25))) / 2  # soft target
    assert math.isclose(terms.ce.item(), ce, rel_tol=1e-6)
    assert math.isclose(terms.rel_bce.item(), bce, rel_tol=1e-6)
    assert math.isclose(terms.loss.item(), ce + 0.5 * bce, rel_tol=1e-6)
    assert terms.aux is None


def test_relevance_gradient_reaches_only_through_rev_logit_and_scales_with_lambda():
    logits = torch.zeros(4, 3, requires_grad=True)
    rev_logit = torch.zeros(4, requires_grad=True)
    target = torch.tensor([1.0, 0.0, 0.5, 1.0])
    for weight in (0.0, 2.0):
        logits.grad = rev_logit.grad = None
        imd_objective(
            _output(logits, rev_logit), torch.tensor([0, 1, 2, 0]), target, relevance_weight=weight
        ).loss.backward()
        # d/dx BCE-with-logits = (sigmoid(x) - y) / B
        torch.testing.assert_close(rev_logit.grad, weight * (0.5 - target) / 4)


def test_invalid_items_get_zero_weight_and_the_mean_is_over_valid_items():
    logits = torch.randn(4, 5, requires_grad=True)
    labels = torch.tensor([1, 2, 3, 4])
    rev_logit, target = torch.randn(4), torch.rand(4)
    valid = torch.tensor([True, False, True, False])
    terms = imd_objective(_output(logits, rev_logit), labels, target, valid)
    expected = imd_objective(_output(logits[valid], rev_logit[valid]), labels[valid], target[valid])
    torch.testing.assert_close(terms.loss, expected.loss)
    terms.loss.backward()
    assert (logits.grad[~valid] == 0).all() and (logits.grad[valid] != 0).any()
    # A batch with no valid item contributes a zero loss (not NaN) and zero gradients.
    nothing = imd_objective(_output(logits, rev_logit), labels, target, torch.zeros(4, dtype=torch.bool))
    assert nothing.loss.item() == 0.0


def test_label_smoothing_aux_loss_and_models_without_relevance():
    logits = torch.tensor([[3.0, 0.0]])
    labels = torch.tensor([0])
    plain = imd_objective(_output(logits), labels, None)
    smooth = imd_objective(_output(logits), labels, None, label_smoothing=0.2)
    assert plain.rel_bce is None and plain.loss.item() == plain.ce.item()
    assert smooth.ce.item() > plain.ce.item()
    with_aux = imd_objective(_output(logits, aux_loss=torch.tensor(0.7)), labels, None)
    assert math.isclose(with_aux.loss.item(), plain.loss.item() + 0.7, rel_tol=1e-6)
    # bf16 logits (autocast) are promoted: the loss is fp32.
    assert imd_objective(_output(logits.bfloat16()), labels, None).loss.dtype == torch.float32
