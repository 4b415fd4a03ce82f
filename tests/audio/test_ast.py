"""Frozen AST wrapper: loading from a local save_pretrained directory, outputs, label checks, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from avlabel.audio.ast import AstTagger, check_label_order, tag_file
from avlabel.audio.decode import AudioStatus
from avlabel.errors import AvlabelError
from avlabel.labels import LabelSet

from ._media import save_tiny_ast, tone


@pytest.fixture(scope="module")
def tagger(tiny_ast_dir):
    return AstTagger.from_pretrained(tiny_ast_dir)


def test_loads_frozen_in_eval_mode(tagger, audioset):
    assert tagger.labels == audioset.labels and tagger.dim == 32
    assert not tagger.model.training
    assert not any(parameter.requires_grad for parameter in tagger.model.parameters())
    assert tagger.filterbank.config.max_length == 1024 and tagger.filterbank.config.mean == pytest.approx(-4.2677393)
    assert tagger.model.config._attn_implementation == "sdpa"


def test_embedding_is_the_mean_of_the_two_class_tokens_and_probs_the_head(tagger):
    waveforms = np.stack([tone(440, 10.0), tone(3000, 10.0)])
    features, num_frames = tagger.filterbank(waveforms, [160_000, 160_000])
    embedding, probs, tokens = tagger.embed(features, num_frames)
    assert embedding.shape == (2, 32) and probs.shape == (2, 527) and tokens is None  # tokens only when asked
    with torch.no_grad():
        hidden = tagger.model.audio_spectrogram_transformer(features).last_hidden_state  # (B, 2 + patches, D)
        logits = tagger.model(input_values=features).logits
    torch.testing.assert_close(embedding, (hidden[:, 0] + hidden[:, 1]) / 2)
    torch.testing.assert_close(probs, torch.sigmoid(logits))
    assert not torch.allclose(embedding[0], embedding[1])


def test_time_tokens_are_the_patch_tokens_averaged_over_frequency_rows(tagger):
    short = np.concatenate([tone(3000, 4.0), np.zeros(96_000, np.float32)])
    features, num_frames = tagger.filterbank(np.stack([tone(440, 10.0), short]), [160_000, 64_000])
    with_tokens = tagger.embed(features, num_frames, tokens=True)
    alone = tagger.embed(features, num_frames)
    # One forward pass serves all three outputs, and asking for tokens changes neither of the others.
    torch.testing.assert_close(with_tokens.embedding, alone.embedding)
    torch.testing.assert_close(with_tokens.probs, alone.probs)
    # AST-base geometry: 16x16 patches, stride 10, on 128 bins x 1024 frames: 12 rows x 101 columns.
    assert tagger.token_grid.count == 101 and tagger.token_dim == 32
    assert with_tokens.tokens.shape == (2, 101, 32) and with_tokens.tokens.dtype == torch.float32
    ast = tagger.model.audio_spectrogram_transformer
    with torch.no_grad():
        # Where each patch token comes from, read off the patch embedding's own convolution:
        # (B, D, rows, columns) flattened row by row -- the order the tokens are averaged in.
        conv = ast.embeddings.patch_embeddings.projection(features.unsqueeze(1).transpose(2, 3))
        assert conv.shape[2:] == (12, 101)
        torch.testing.assert_close(ast.embeddings.patch_embeddings(features), conv.flatten(2).transpose(1, 2))
        hidden = ast(features).last_hidden_state[:, 2:]  # (B, 12 * 101, D) without the two class tokens
    expected = torch.stack([hidden[:, row * 101 : (row + 1) * 101] for row in range(12)]).mean(dim=0)
    torch.testing.assert_close(with_tokens.tokens, expected)


def test_batching_does_not_change_a_row(tagger):
    waveforms = np.stack([tone(440, 10.0), tone(900, 4.0, amplitude=0.1).repeat(1).tolist() + [0.0] * 96_000])
    together = tagger.tag(waveforms.astype(np.float32), [160_000, 64_000]).embedding
    alone = tagger.tag(waveforms[1:].astype(np.float32), [64_000]).embedding
    torch.testing.assert_close(together[1:], alone, atol=1e-5, rtol=1e-4)


def test_fingerprint_identifies_the_weights_not_the_path(tiny_ast_dir, tagger, tmp_path, audioset):
    moved = shutil.copytree(tiny_ast_dir, tmp_path / "moved")
    assert AstTagger.from_pretrained(moved).fingerprint == tagger.fingerprint
    other = save_tiny_ast(tmp_path / "other", audioset.labels, seed=1)
    assert AstTagger.from_pretrained(other).fingerprint != tagger.fingerprint


def test_label_order_check(audioset):
    check_label_order(audioset.labels, audioset, "ckpt")
    check_label_order([label.upper() for label in audioset.labels], audioset, "ckpt")  # case/spacing ignored
    swapped = list(audioset.labels)
    swapped[3], swapped[7] = swapped[7], swapped[3]
    with pytest.raises(AvlabelError, match=r"different order \(class 3 is") as error:
        check_label_order(swapped, audioset, "ckpt")
    assert "\n" not in str(error.value)
    with pytest.raises(AvlabelError, match="predicts 50 labels but audio label set 'audioset' has 527"):
        check_label_order(audioset.labels[:50], audioset, "ckpt")
    esc = LabelSet("esc", ("dog", "rain"))
    with pytest.raises(AvlabelError, match="'dog' is not among them"):
        check_label_order(("cat", "rain"), esc, "ckpt")


def test_permuted_checkpoint_is_refused(tmp_path, audioset):
    labels = list(audioset.labels)
    labels[0], labels[1] = labels[1], labels[0]
    permuted = AstTagger.from_pretrained(save_tiny_ast(tmp_path / "permuted", labels))
    with pytest.raises(AvlabelError, match="different order"):
        check_label_order(permuted.labels, audioset, "the AST checkpoint")


def test_checkpoint_without_preprocessor_config_uses_the_audioset_recipe(tiny_ast_dir, tmp_path):
    bare = shutil.copytree(tiny_ast_dir, tmp_path / "bare")
    (bare / "preprocessor_config.json").unlink()
    config = AstTagger.from_pretrained(bare).filterbank.config
    assert (config.max_length, config.num_mel_bins, config.std) == (1024, 128, pytest.approx(4.5689974))


def test_preprocessor_that_does_not_fit_the_model(tiny_ast_dir, tmp_path):
    broken = shutil.copytree(tiny_ast_dir, tmp_path / "broken")
    config = json.loads((broken / "preprocessor_config.json").read_text())
    (broken / "preprocessor_config.json").write_text(json.dumps({**config, "max_length": 512}))
    with pytest.raises(AvlabelError, match="512x128 filterbanks but the model expects 1024x128"):
        AstTagger.from_pretrained(broken)


def test_load_errors(tmp_path, monkeypatch):
    with pytest.raises(AvlabelError, match="directory not found"):
        AstTagger.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AvlabelError, match="no config.json"):
        AstTagger.from_pretrained(tmp_path / "empty")
    (tmp_path / "vit").mkdir()
    (tmp_path / "vit" / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(AvlabelError, match="not an Audio Spectrogram Transformer"):
        AstTagger.from_pretrained(tmp_path / "vit")


def test_unreachable_hub_says_to_pass_a_local_directory(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # what a box without internet sees, fast
    with pytest.raises(AvlabelError, match=r"--ast DIR") as error:
        AstTagger.from_pretrained("avlabel-tests/no-such-ast")
    assert "huggingface-cli download avlabel-tests/no-such-ast" in str(error.value)


def test_tag_file(tagger, media):
    status, top = tag_file(tagger, media["tone_wav"], top=5)
    assert status == AudioStatus.OK and len(top) == 5
    probabilities = [probability for _, probability in top]
    assert probabilities == sorted(probabilities, reverse=True) and all(0 < p < 1 for p in probabilities)
    assert tag_file(tagger, media["no_audio_mp4"]) == (AudioStatus.NO_AUDIO_STREAM, [])
