"""AVT: bottleneck fusion, where information may flow, the MBT classifier and the self-supervised heads."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from avlabel.errors import AvlabelError
from avlabel.models import TOKEN_FUSION_NAMES, build_model, model_config
from avlabel.models.avt import AudioVideoTransformer, block_with_context, sample_negatives, video_patch_targets

B, T, SIZE, N_A, D_A, CLASSES = 3, 4, 32, 12, 24, 10
VALID_LENGTHS = (12, 5, 0)  # the last clip has no audio
STREAMS = [subset for size in (1, 2, 3) for subset in itertools.combinations(("rgb", "flow", "audio"), size)]


def _config(**overrides):
    return model_config("avt_tiny", audio_tokens=N_A, audio_dim=D_A, **overrides)


def _inputs(modalities=("rgb", "audio"), seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = {}
    if "rgb" in modalities:
        inputs["rgb"] = torch.randn(B, 3, T, SIZE, SIZE, generator=generator)
    if "flow" in modalities:
        inputs["flow"] = torch.randn(B, 2, T, SIZE, SIZE, generator=generator)
    if "audio" in modalities:
        inputs["audio_tokens"] = torch.randn(B, N_A, D_A, generator=generator).half()  # cached as float16
        inputs["audio_token_valid"] = torch.arange(N_A)[None, :] < torch.tensor(VALID_LENGTHS)[:, None]
    return inputs


def _model(seed=0, **overrides) -> AudioVideoTransformer:
    torch.manual_seed(seed)
    return build_model(_config(**overrides))


@pytest.mark.parametrize("fusion", TOKEN_FUSION_NAMES)
@pytest.mark.parametrize("modalities", STREAMS, ids="+".join)
def test_every_stream_subset_classifies_with_the_mean_of_the_streams_logits(fusion, modalities):
    audio_visual = "audio" in modalities and len(modalities) > 1
    heads = ("contrastive", "matching") if audio_visual else ()
    model = _model(modalities=modalities, fusion=fusion, pretext_heads=heads).eval()
    with torch.no_grad():
        out = model(**_inputs(modalities))
    assert out.logits.shape == (B, CLASSES) and out.logits.isfinite().all()
    assert out.modality_logits.shape == (B, len(modalities), CLASSES)
    expected_mask = torch.ones(B, len(modalities), dtype=torch.bool)
    if "audio" in modalities:
        expected_mask[:, -1] = torch.tensor(VALID_LENGTHS) > 0
        assert out.keep.tolist() == [True, True, False]
    assert torch.equal(out.modality_mask, expected_mask)
    counted = torch.where(expected_mask.any(1, keepdim=True), expected_mask, True)  # audio-only: no stream present
    weights = counted.unsqueeze(-1).float()
    torch.testing.assert_close(out.logits, (out.modality_logits * weights).sum(1) / weights.sum(1))
    assert (out.embeddings is not None) == audio_visual and (out.matching is not None) == audio_visual
    assert out.reconstructions is None


def _block_inputs(blocks, run):
    """The first positional input of every block while ``run()`` executes."""
    seen = []
    hooks = [
        block.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone())) for block in blocks
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def test_bottleneck_tokens_change_only_at_and_after_the_fusion_layer():
    model = _model(modalities=("rgb", "flow", "audio"), depth=4, fusion_layer=2, pretext_heads=()).eval()
    inputs = _inputs(("rgb", "flow", "audio"))
    seen = _block_inputs(model.streams["audio"].blocks, lambda: model(**inputs))
    k = model.config.n_bottleneck
    # Layers 0-1 run the audio tokens alone; layers 2-3 append the K bottleneck tokens.
    assert [x.shape[1] for x in seen] == [1 + N_A, 1 + N_A, 1 + N_A + k, 1 + N_A + k]
    learned = model.bottleneck.detach().expand(B, -1, -1)
    torch.testing.assert_close(seen[2][:, -k:], learned, rtol=0, atol=0)  # untouched before the fusion layer
    assert (seen[3][:, -k:] - seen[2][:, -k:]).abs().amax() > 1e-3  # layer 2 updated it


def test_audio_reaches_the_video_stream_only_through_fusion_layers():
    inputs = _inputs()
    changed = dict(inputs)
    changed["audio_tokens"] = inputs["audio_tokens"] + torch.randn(B, N_A, D_A).half()  # every token, valid or not
    for fusion, fusion_layer in [("bottleneck", 2), ("full_attention", 2), ("bottleneck", 4)]:
        model = _model(depth=4, fusion=fusion, fusion_layer=fusion_layer, pretext_heads=("contrastive",)).eval()
        before = _block_inputs(model.streams["rgb"].blocks, lambda m=model: m(**inputs))
        after = _block_inputs(model.streams["rgb"].blocks, lambda m=model: m(**changed))
        for layer in range(fusion_layer + 1):  # the input of the fusion layer is still pure video
            if layer < len(before):
                torch.testing.assert_close(after[layer], before[layer], rtol=0, atol=0)
        with torch.no_grad():
            out, out_changed = model(**inputs), model(**changed)
        # The contrastive video embedding is taken at the fusion boundary: pure video.
        torch.testing.assert_close(out_changed.embeddings.video, out.embeddings.video, rtol=0, atol=0)
        video_logits, video_logits_changed = out.modality_logits[:, 0], out_changed.modality_logits[:, 0]
        if fusion_layer == 4:  # late fusion: no layer exchanges anything
            torch.testing.assert_close(video_logits_changed, video_logits, rtol=0, atol=0)
        else:  # clips with audio pass it on; the clip without audio has none to pass
            assert (video_logits_changed[:2] - video_logits[:2]).abs().amax() > 1e-5, fusion
            torch.testing.assert_close(video_logits_changed[2], video_logits[2], rtol=0, atol=0)


@pytest.mark.parametrize("fusion", TOKEN_FUSION_NAMES)
def test_padding_never_reaches_any_output_even_as_nan(fusion):
    model = _model(modalities=("rgb", "flow", "audio"), fusion=fusion).eval()
    inputs = _inputs(("rgb", "flow", "audio"))
    poisoned = dict(inputs)
    tokens = inputs["audio_tokens"].clone()
    tokens[~inputs["audio_token_valid"]] = float("nan")
    poisoned["audio_tokens"] = tokens
    with torch.no_grad():
        out, out_poisoned = model(**inputs), model(**poisoned)
    assert out_poisoned.logits.isfinite().all()
    for name in ("logits", "modality_logits"):
        torch.testing.assert_close(getattr(out_poisoned, name), getattr(out, name), rtol=0, atol=0)
    torch.testing.assert_close(out_poisoned.matching.logits, out.matching.logits, rtol=0, atol=0)
    # The clip without audio is classified by its video streams alone.
    torch.testing.assert_close(out.logits[2], out.modality_logits[2, :2].mean(0))


@pytest.mark.parametrize("layer", [0, 3])  # a unimodal layer and a bottleneck layer
def test_audio_attention_reads_no_padding_token(layer):
    """The audio block's output on a clip's valid tokens is that of the block run without its padding."""
    model = _model(depth=4, fusion_layer=2).eval()
    block = model.streams["audio"].blocks[layer]
    seen = {}
    hook = block.register_forward_hook(lambda _m, args, out: seen.update(x=args[0], out=out))
    with torch.no_grad():
        model(**_inputs())
        hook.remove()
        length = VALID_LENGTHS[1]
        x = seen["x"][1:2]  # clip 1: 5 valid tokens of 12, then (in fusion layers) the bottleneck
        kept = torch.cat([x[:, : 1 + length], x[:, 1 + N_A :]], dim=1)  # class token, valid tokens, bottleneck
        expected = block(kept)
    out = seen["out"][1:2]
    torch.testing.assert_close(out[:, : 1 + length], expected[:, : 1 + length])
    torch.testing.assert_close(out[:, 1 + N_A :], expected[:, 1 + length :])


@pytest.mark.parametrize("fusion", TOKEN_FUSION_NAMES)
def test_a_clip_without_audio_takes_nothing_from_the_audio_stream(fusion):
    """Its audio stream's bottleneck copy (or tokens) are left out, its audio logits out of the prediction."""
    inputs = _inputs()
    model = _model(fusion=fusion).eval()
    with torch.no_grad():
        out = model(**inputs)
        for parameter in model.streams["audio"].parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        changed = model(**inputs)
    torch.testing.assert_close(changed.logits[2], out.logits[2], rtol=0, atol=0)
    assert (changed.logits[:2] - out.logits[:2]).abs().amax() > 1e-4


def test_full_attention_reads_every_token_as_the_block_on_the_concatenation_would():
    torch.manual_seed(0)
    model = _model(fusion="full_attention").eval()
    block = model.streams["rgb"].blocks[0]
    own, other = torch.randn(2, 7, 64), torch.randn(2, 5, 64)
    context = torch.cat([own, other], dim=1)
    everything = torch.ones(2, 1, 1, 12, dtype=torch.bool)
    with torch.no_grad():
        expected = super(type(block), block).forward(context)[:, :7]  # timm's Block on all 12 tokens
        torch.testing.assert_close(block_with_context(block, own, context, everything), expected)
        # Masked keys are exactly absent keys.
        keys = everything.clone()
        keys[..., 9:] = False
        torch.testing.assert_close(
            block_with_context(block, own, context, keys), block_with_context(block, own, context[:, :9], keys[..., :9])
        )


def test_hard_negatives_are_never_positives_nor_excluded_candidates():
    torch.manual_seed(0)
    batch = 6
    similarity = torch.eye(batch) * 50.0 + torch.randn(batch, batch)  # the positive is by far the most similar
    present = torch.tensor([True, True, False, True, True, True])
    others = ~torch.eye(batch, dtype=torch.bool)
    candidates = others & present[None, :]
    draws = torch.stack([sample_negatives(similarity, candidates)[0] for _ in range(500)])  # (500, B)
    assert not (draws == torch.arange(batch)).any()  # never the positive
    assert not (draws == 2).any()  # never a clip without audio
    assert len(draws.unique()) == 5  # the softmax spreads over every candidate
    # Hard: the most similar candidate is drawn most often.
    similarity[0, 4] = 3.0
    first = torch.stack([sample_negatives(similarity, candidates)[0][0] for _ in range(300)])
    assert (first == 4).float().mean() > 0.5
    # An anchor without any candidate is flagged, not paired with a positive silently.
    lonely = torch.zeros(batch, batch, dtype=torch.bool)
    lonely[1:, 0] = True
    index, found = sample_negatives(similarity, lonely)
    assert found.tolist() == [False, True, True, True, True, True] and index[1:].eq(0).all()


def test_training_matching_pairs_each_clip_with_its_own_audio_and_two_negatives():
    model = _model(modalities=("rgb", "flow", "audio")).train()
    out = model(**_inputs(("rgb", "flow", "audio")))
    matching = out.matching
    assert matching.logits.shape == (3 * B, 2)
    rows = torch.arange(B)
    assert torch.equal(matching.video_index[:B], rows) and torch.equal(matching.audio_index[:B], rows)
    negatives = slice(B, None)
    assert not (matching.video_index[negatives] == matching.audio_index[negatives])[matching.sampled[negatives]].any()
    assert not (matching.audio_index[B : 2 * B] == 2).any()  # never the audio of the clip without audio
    assert not matching.sampled[2 * B + 2]  # the clip without audio has no audio to pair with another video
    with torch.no_grad():
        evaluation = model.eval()(**_inputs(("rgb", "flow", "audio")))
    assert evaluation.matching.logits.shape == (B, 2) and evaluation.matching.sampled.all()


def test_masked_pass_hides_masked_tubes_and_tokens_and_predicts_their_targets():
    model = _model(modalities=("rgb", "flow", "audio")).eval()
    inputs = _inputs(("rgb", "flow", "audio"))
    num_patches = (SIZE // 8) ** 2
    tube = torch.zeros(B, num_patches, dtype=torch.bool)
    tube[:, :5] = True
    audio = torch.zeros(B, N_A, dtype=torch.bool)
    audio[:2, :3] = True
    masks = {"rgb_mask": tube, "flow_mask": tube, "audio_mask": audio}
    changed = dict(inputs)
    changed["rgb"] = inputs["rgb"].clone()
    changed["rgb"][..., :8, :8] += 1.0  # patch 0 of every frame: inside a masked tube
    changed["audio_tokens"] = inputs["audio_tokens"].clone()
    changed["audio_tokens"][:2, :3] += 1.0  # masked audio tokens
    with torch.no_grad():
        out, out_changed = model(**inputs, **masks), model(**changed, **masks)
    for modality, shape in [
        ("rgb", (B, T, num_patches, 192)),
        ("flow", (B, T, num_patches, 128)),
        ("audio", (B, N_A, D_A)),
    ]:
        reconstruction = out.reconstructions[modality]
        assert reconstruction.prediction.shape == reconstruction.target.shape == shape, modality
        # What lies under a mask cannot be seen by the masked pass.
        torch.testing.assert_close(out_changed.reconstructions[modality].prediction, reconstruction.prediction)
    assert not torch.equal(out_changed.reconstructions["rgb"].target, out.reconstructions["rgb"].target)
    # Targets: MAE's per-patch normalised pixels (RGB), raw flow, standardised audio tokens.
    patch = inputs["rgb"][1, :, 2, 8:16, 16:24].permute(1, 2, 0).reshape(-1)  # frame 2, patch row 1 col 2
    torch.testing.assert_close(
        out.reconstructions["rgb"].target[1, 2, 6], (patch - patch.mean()) / patch.var().add(1e-6).sqrt()
    )
    flow_patch = inputs["flow"][0, :, 1, :8, 8:16].permute(1, 2, 0).reshape(-1)
    torch.testing.assert_close(out.reconstructions["flow"].target[0, 1, 1], flow_patch)
    token = inputs["audio_tokens"][0, 4].float()
    torch.testing.assert_close(out.reconstructions["audio"].target[0, 4], F.layer_norm(token, token.shape))
    torch.testing.assert_close(
        video_patch_targets(inputs["flow"], 8, normalise=False), out.reconstructions["flow"].target
    )


def test_linear_probe_trains_the_head_and_keeps_labels_out_of_the_encoder():
    model = _model().train()
    out = model(**_inputs(), linear_probe=True)
    F.cross_entropy(out.logits, torch.tensor([1, 2, 3])).backward()
    assert model.head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.streams.parameters())


def test_temperature_is_clamped_to_albefs_range_before_training_forwards():
    model = _model().train()
    with torch.no_grad():
        model.temperature.fill_(5.0)
    out = model(**_inputs())
    assert model.temperature.item() == 0.5 and out.embeddings.temperature.item() == 0.5


def test_gradient_checkpointing_gives_the_same_values_and_gradients():
    results = []
    for checkpointing in (False, True):
        model = _model(modalities=("rgb", "flow", "audio"), grad_checkpointing=checkpointing).eval()
        out = model(**_inputs(("rgb", "flow", "audio")))
        out.logits.sum().backward()
        results.append(
            (out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        )
    torch.testing.assert_close(results[1][0], results[0][0])
    assert results[0][1].keys() == results[1][1].keys()
    for name, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], grad, msg=name)


def test_bf16_autocast_trains():
    model = _model(modalities=("rgb", "flow", "audio")).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**_inputs(("rgb", "flow", "audio")), audio_mask=torch.rand(B, N_A) < 0.5)
    loss = out.logits.float().logsumexp(-1).mean() + out.matching.logits.float().mean()
    loss = loss + out.reconstructions["audio"].prediction.float().pow(2).mean()
    loss.backward()
    assert all(p.grad.isfinite().all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"modalities": ("rgb", "flow")}, "contrastive and matching pair audio with video"),
        ({"fusion_layer": 0}, r"model\.fusion_layer: 0 leaves no unimodal layer"),
        ({"fusion_layer": 4}, r"model\.fusion_layer: 4 \(late fusion\) leaves the matching head"),
        ({"fusion_layer": 5}, r"model\.fusion_layer: 5 must lie in \[0, depth=4\]"),
        ({"fusion": "imd"}, "self-supervised heads need an AVT token fusion"),
        ({"pretext_heads": ("masked_audio", "masked_audio")}, "at most once"),
        ({"n_bottleneck": 0}, r"model\.n_bottleneck: 0 must be a positive integer"),
    ],
)
def test_impossible_avt_configs_are_refused_with_the_key(overrides, message):
    with pytest.raises(AvlabelError, match=message):
        _config(**overrides)


def test_inputs_must_fit_the_streams():
    model = _model().eval()
    inputs = _inputs()
    with pytest.raises(AvlabelError, match="audio_tokens and audio_token_valid go together"):
        model(rgb=inputs["rgb"], audio_tokens=inputs["audio_tokens"])
    with pytest.raises(AvlabelError, match="has no flow input"):
        model(**inputs, flow=torch.zeros(B, 2, T, SIZE, SIZE))
    with pytest.raises(AvlabelError, match="no masked-modelling head for rgb"):
        _model(pretext_heads=("contrastive",))(**inputs, flow_mask=None, rgb_mask=torch.ones(B, 16, dtype=torch.bool))
