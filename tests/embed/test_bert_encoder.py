"""The plain-PyTorch BERT encoder must reproduce transformers' BertModel on the checkpoints users have."""

from __future__ import annotations

import json

import pytest
import torch

from avlabel.embed.bert_encoder import bert_encoder_supported, filter_bert_state_dict, load_bert_encoder


def _tiny_config(**overrides):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=101,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=40,
        **overrides,
    )


def _reference_hidden(model, ids, mask):
    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_new", "relu"])
def test_matches_transformers_on_a_masked_lm_checkpoint_with_padding(tmp_path, hidden_act):
    # A BertForMaskedLM in the older pytorch_model.bin format: "bert." prefix, "cls." head, no pooler.
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    reference = BertForMaskedLM(_tiny_config(hidden_act=hidden_act)).eval()
    reference.config.save_pretrained(tmp_path)
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    assert bert_encoder_supported(tmp_path)

    ids = torch.tensor([[2, 17, 45, 3, 0, 0], [2, 9, 88, 61, 12, 3]])
    mask = (ids != 0).long()
    encoder = load_bert_encoder(tmp_path)
    with torch.inference_mode():
        ours = encoder(ids, mask)
    expected = _reference_hidden(reference.bert, ids, mask)
    # Padded positions are never attended to, so only real tokens must agree.
    torch.testing.assert_close(ours[mask.bool()], expected[mask.bool()], rtol=1e-5, atol=1e-5)


def test_tf_era_layer_norm_names_and_qkv_fusion():
    from transformers import BertModel

    torch.manual_seed(0)
    state_dict = BertModel(_tiny_config()).state_dict()
    tf_style = {
        key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): value
        for key, value in state_dict.items()
    }
    filtered = filter_bert_state_dict(tf_style)
    assert "layers.1.norm2.weight" in filtered and not any("pooler" in key or "gamma" in key for key in filtered)
    query, key, value = (
        state_dict[f"encoder.layer.0.attention.self.{name}.weight"] for name in ("query", "key", "value")
    )
    torch.testing.assert_close(filtered["layers.0.qkv.weight"], torch.cat([query, key, value]))


def test_checkpoint_for_another_shape_fails_loudly(tmp_path):
    from transformers import BertModel

    BertModel(_tiny_config()).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(RuntimeError, match="layers.2"):
        load_bert_encoder(tmp_path)


@pytest.mark.parametrize(
    "change", [{"model_type": "roberta"}, {"position_embedding_type": "relative_key"}, {"hidden_act": "silu"}]
)
def test_other_architectures_are_left_to_sentence_transformers(tmp_path, change):
    from transformers import BertModel

    BertModel(_tiny_config()).save_pretrained(tmp_path)
    assert bert_encoder_supported(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
    assert not bert_encoder_supported(tmp_path)
