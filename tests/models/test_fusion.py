"""The Table-5 fusion heads against their published equations, on hand-sized tensors.

Each test sets a head's weights by hand and compares its output with the equation evaluated
independently (Python floats or NumPy), so a transposed weight, a swapped modality or a wrong
nonlinearity fails here, not only "it trains".
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avlabel.models import build_model, model_config
from avlabel.models.fusion import AVCFusion, GMUFusion, LateConcatFusion, NLGateFusion, SEGateFusion


def _set(linear: torch.nn.Linear, weight, bias=None) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        if bias is not None:
            linear.bias.copy_(torch.tensor(bias, dtype=torch.float32))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


PRESENT = torch.tensor([True])


def test_late_concat_is_one_linear_layer_on_visual_then_audio():
    head = LateConcatFusion(2)
    _set(head.proj, [[1.0, 2.0, 3.0, 4.0], [0.0, -1.0, 0.5, 0.0]], [0.1, -0.2])
    z = head(torch.tensor([[1.0, -1.0]]), torch.tensor([[2.0, 0.5]]), PRESENT).z
    # z = W [v; a] + b
    expected = [1 - 2 + 6 + 2 + 0.1, 1 + 1 - 0.2]
    torch.testing.assert_close(z, torch.tensor([expected]))


def test_gmu_gates_tanh_projections_of_each_modality():
    """Arevalo et al. 2017: h_v = tanh(W_v v), h_a = tanh(W_a a), g = sigmoid(W_g [v; a]), z = g h_v + (1 - g) h_a."""
    head = GMUFusion(2)
    _set(head.visual_proj, [[1.0, 0.0], [0.0, 2.0]])
    _set(head.audio_proj, [[0.5, 0.0], [0.0, -1.0]])
    _set(head.gate, [[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    v, a = [0.5, -1.0], [2.0, 0.25]
    z = head(torch.tensor([v]), torch.tensor([a]), PRESENT).z
    h_v = [math.tanh(0.5), math.tanh(-2.0)]
    h_a = [math.tanh(1.0), math.tanh(-0.25)]
    g = [_sigmoid(0.5 - 2.0), _sigmoid(-1.0 + 0.25)]
    expected = [g[i] * h_v[i] + (1 - g[i]) * h_a[i] for i in range(2)]
    torch.testing.assert_close(z, torch.tensor([expected]))


def test_gmu_with_absent_audio_is_the_gated_visual_projection_alone():
    head = GMUFusion(3)
    visual = torch.randn(1, 3)
    z = head(visual, torch.zeros(1, 3), torch.tensor([False])).z
    gate = torch.sigmoid(head.gate(torch.cat([visual, torch.zeros(1, 3)], dim=-1)))
    torch.testing.assert_close(z, gate * torch.tanh(head.visual_proj(visual)))  # h_a = tanh(0) = 0


def test_se_gate_rescales_visual_channels_by_an_audio_excitation():
    """Hu et al. / Wang et al.: z = W [v * sigmoid(W2 relu(W1 a + b1) + b2); a] + b."""
    head = SEGateFusion(2, reduction=1)  # bottleneck max(2 // 1, 8) = 8 units
    w1 = np.linspace(-1.0, 1.0, 16).reshape(8, 2)
    b1 = np.linspace(-0.2, 0.3, 8)
    w2 = np.linspace(0.5, -0.5, 16).reshape(2, 8)
    b2 = np.array([0.1, -0.3])
    w = np.arange(8, dtype=np.float64).reshape(2, 4) / 10
    b = np.array([0.05, -0.05])
    _set(head.gate[0], w1, b1)
    _set(head.gate[2], w2, b2)
    _set(head.proj, w, b)
    v, a = np.array([0.5, -1.5]), np.array([2.0, -0.7])
    z = head(torch.tensor(v[None], dtype=torch.float32), torch.tensor(a[None], dtype=torch.float32), PRESENT).z
    excitation = 1 / (1 + np.exp(-(w2 @ np.maximum(w1 @ a + b1, 0) + b2)))
    expected = w @ np.concatenate([v * excitation, a]) + b
    torch.testing.assert_close(z, torch.tensor(expected[None], dtype=torch.float32))


@pytest.mark.parametrize(
    ("dim", "reduction", "width"), [(768, 16, 48), (1024, 16, 64), (32, 16, 8), (64, 4, 16), (4, 16, 8)]
)
def test_se_gate_bottleneck_is_d_over_r_never_below_eight(dim, reduction, width):
    gate = SEGateFusion(dim, reduction=reduction).gate
    assert (gate[0].in_features, gate[0].out_features, gate[2].out_features) == (dim, width, dim)


def test_se_reduction_is_a_model_setting():
    assert model_config("imd_b").se_reduction == 16
    model = build_model(model_config("imd_tiny", fusion="se_gate", se_reduction=2))  # D = 64
    assert model.fusion.gate[0].out_features == 32


def _nl_gate() -> NLGateFusion:
    head = NLGateFusion(2)  # inner width 1
    _set(head.query, [[1.0, 0.5]], [0.1])
    _set(head.key, [[2.0, -1.0]], [0.0])
    _set(head.value, [[0.5, 1.0]], [-0.2])
    _set(head.out, [[1.5], [-0.5]], [0.05, 0.0])
    _set(head.proj, [[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, -0.5]], [0.0, 0.1])
    return head


def _nl_expected(v, a, weights_visual_audio):
    value = [0.5 * x[0] + 1.0 * x[1] - 0.2 for x in (v, a)]
    read = sum(w * val for w, val in zip(weights_visual_audio, value))
    gated = [v[0] + 1.5 * read + 0.05, v[1] - 0.5 * read]
    return [gated[0] + 0.5 * a[0], gated[1] - 0.5 * a[1] + 0.1]


def test_nl_gate_reads_from_both_embeddings_with_scaled_dot_product_weights():
    """Non-local read: q = W_q v, k_j = W_k x_j, w = softmax(q k / sqrt(d)), v' = v + W_o sum_j w_j W_v x_j."""
    head = _nl_gate()
    v, a = [1.0, -0.5], [0.25, 2.0]
    z = head(torch.tensor([v]), torch.tensor([a]), PRESENT).z
    q = 1.0 * v[0] + 0.5 * v[1] + 0.1
    scores = [q * (2.0 * x[0] - 1.0 * x[1]) for x in (v, a)]  # d = 1: no scaling
    exp = [math.exp(s) for s in scores]
    weights = [e / sum(exp) for e in exp]
    assert 0.01 < weights[1] < 0.99  # both embeddings really contribute
    torch.testing.assert_close(z, torch.tensor([_nl_expected(v, a, weights)]))


def test_nl_gate_without_audio_reads_only_the_visual_embedding():
    head = _nl_gate()
    v, a = [1.0, -0.5], [0.0, 0.0]
    z = head(torch.tensor([v]), torch.tensor([a]), torch.tensor([False])).z
    torch.testing.assert_close(z, torch.tensor([_nl_expected(v, a, [1.0, 0.0])]))


def test_nl_gate_starts_as_the_identity_read():
    head = NLGateFusion(4)
    head.init_weights()
    v, a = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(head(v, a, torch.ones(3, dtype=torch.bool)).z, head.proj(torch.cat([v, a], dim=-1)))


def _avc() -> AVCFusion:
    # Correspondence logit of a pair (v, a) with D = 1: relu(v + a).
    head = AVCFusion(1, loss_weight=2.0)
    _set(head.correspondence[0], [[1.0, 1.0]], [0.0])
    _set(head.correspondence[2], [[1.0]], [0.0])
    return head


def _bce(logit: float, target: float) -> float:
    return float(F.binary_cross_entropy_with_logits(torch.tensor(logit), torch.tensor(target)))


def _avc_expected(v, a, present, shift) -> float:
    """Positives (v_i, a_i) -> 1, negatives (v_i, a_(i+shift) mod B) -> 0, pairs without audio left out."""
    batch = len(v)
    terms = [_bce(max(v[i] + a[i], 0.0), 1.0) for i in range(batch) if present[i]]
    for i in range(batch):
        partner = (i + shift) % batch
        if present[partner] and partner != i:
            terms.append(_bce(max(v[i] + a[partner], 0.0), 0.0))
    return 2.0 * sum(terms) / max(len(terms), 1)


def test_avc_loss_is_bce_of_own_audio_as_positives_and_a_shifted_clips_audio_as_negatives():
    head = _avc().train()
    v, a, present = [0.1, -0.4, 0.3, 0.8], [1.0, 2.5, -3.0, 0.2], [True, True, False, True]
    candidates = {shift: _avc_expected(v, a, present, shift) for shift in range(4)}
    assert len(set(candidates.values())) == 4  # every shift gives a different loss here
    seen = set()
    for seed in range(40):
        torch.manual_seed(seed)
        out = head(torch.tensor(v)[:, None], torch.tensor(a)[:, None], torch.tensor(present))
        loss = out.aux_loss.item()
        (shift,) = [s for s, value in candidates.items() if math.isclose(loss, value, rel_tol=1e-5)]
        seen.add(shift)
    assert seen == {1, 2, 3}  # a random non-zero shift: no clip is ever its own negative
    torch.testing.assert_close(
        out.z, head.proj(torch.cat([torch.tensor(v)[:, None], torch.tensor(a)[:, None]], dim=-1))
    )


def test_avc_single_clip_has_only_its_positive_and_eval_has_no_loss():
    head = _avc().train()
    out = head(torch.tensor([[0.5]]), torch.tensor([[1.0]]), torch.tensor([True]))
    assert out.aux_loss.item() == pytest.approx(2.0 * _bce(1.5, 1.0))
    assert head.eval()(torch.tensor([[0.5]]), torch.tensor([[1.0]]), torch.tensor([True])).aux_loss is None
