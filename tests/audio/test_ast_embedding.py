"""The frozen AST's clip embedding (one route: AstTagger), outside the trainable model, feeding the audio bottleneck."""

from __future__ import annotations

import pytest
import torch
from transformers import ASTConfig, ASTForAudioClassification

from avlabel.audio.ast import AstTagger
from avlabel.audio.features import AstFilterbank, FilterbankConfig
from avlabel.models import build_model, model_config

AST = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_mel_bins": 32,
    "max_length": 48,
}


@pytest.fixture(scope="module")
def ast():
    torch.manual_seed(0)
    return ASTForAudioClassification(ASTConfig(**AST, num_labels=5))


def _tagger(ast) -> AstTagger:
    filterbank = AstFilterbank(FilterbankConfig(num_mel_bins=AST["num_mel_bins"], max_length=AST["max_length"]))
    return AstTagger(ast, filterbank, source="test")


def test_embedding_is_the_mean_of_the_two_class_tokens(ast):
    tagger = _tagger(ast)
    features = torch.randn(3, AST["max_length"], AST["num_mel_bins"])
    embedding = tagger.embed(features).embedding
    with torch.no_grad():
        tokens = ast.audio_spectrogram_transformer(features).last_hidden_state  # after the final LayerNorm
    assert tagger.dim == 32 and embedding.shape == (3, 32)
    torch.testing.assert_close(embedding, tokens[:, :2].mean(dim=1))


def test_ast_stays_frozen_and_outside_the_trainable_model(ast):
    tagger = _tagger(ast)
    assert not tagger.model.training
    assert not any(p.requires_grad for p in tagger.model.parameters())
    model = build_model(model_config("imd_tiny", modalities=("rgb", "audio"), audio_dim=tagger.dim))
    assert not set(map(id, tagger.model.parameters())) & set(map(id, model.parameters()))
    features = torch.randn(2, AST["max_length"], AST["num_mel_bins"])
    audio = tagger.embed(features).embedding.clone()  # embed runs in inference mode; a clone can enter autograd
    out = model(rgb=torch.randn(2, 3, 4, 32, 32), audio=audio)
    out.logits.sum().backward()
    assert all(p.grad is None for p in tagger.model.parameters())
    assert model.audio_bottleneck.fc1.weight.grad is not None


def test_from_pretrained_uses_the_audio_loader(ast, tmp_path):
    ast.save_pretrained(tmp_path)
    tagger = AstTagger.from_pretrained(tmp_path)
    features = torch.randn(1, AST["max_length"], AST["num_mel_bins"])
    torch.testing.assert_close(tagger.embed(features).embedding, _tagger(ast).embed(features).embedding)
