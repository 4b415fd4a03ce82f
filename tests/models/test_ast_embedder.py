"""The inline AST option: a frozen AST outside the trainable model, feeding the audio bottleneck."""

from __future__ import annotations

import pytest
import torch
from transformers import ASTConfig, ASTForAudioClassification

from avlabel.models import ASTEmbedder, build_model, model_config

AST = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
       "num_mel_bins": 32, "max_length": 48}


@pytest.fixture(scope="module")
def ast():
    torch.manual_seed(0)
    return ASTForAudioClassification(ASTConfig(**AST, num_labels=5))


def test_embedding_is_the_mean_of_the_two_class_tokens(ast):
    embedder = ASTEmbedder(ast)
    features = torch.randn(3, AST["max_length"], AST["num_mel_bins"])
    embedding = embedder(features)
    with torch.no_grad():
        tokens = ast.audio_spectrogram_transformer(features).last_hidden_state  # after the final LayerNorm
    assert embedder.embed_dim == 32 and embedding.shape == (3, 32)
    torch.testing.assert_close(embedding, tokens[:, :2].mean(dim=1))


def test_ast_stays_frozen_and_outside_the_trainable_model(ast):
    embedder = ASTEmbedder(ast).train()
    assert not embedder.training and not embedder.ast.training
    assert not any(p.requires_grad for p in embedder.parameters())
    model = build_model(model_config("imd_tiny", modalities=("rgb", "audio"), audio_dim=embedder.embed_dim))
    assert not set(map(id, embedder.parameters())) & set(map(id, model.parameters()))
    features = torch.randn(2, AST["max_length"], AST["num_mel_bins"])
    out = model(rgb=torch.randn(2, 3, 4, 32, 32), audio=embedder(features))
    out.logits.sum().backward()
    assert all(p.grad is None for p in embedder.parameters())
    assert model.audio_bottleneck.fc1.weight.grad is not None


def test_from_pretrained_uses_the_audio_loader(ast, tmp_path):
    ast.save_pretrained(tmp_path)
    embedder = ASTEmbedder.from_pretrained(tmp_path)
    features = torch.randn(1, AST["max_length"], AST["num_mel_bins"])
    torch.testing.assert_close(embedder(features), ASTEmbedder(ast)(features))
