"""`avlabel predict` on real small videos: classes, relevance verdict, audio status, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from avlabel.cli import cli
from avlabel.data.writer import write_clip
from tests.evaluate._fixtures import shared_tiny_run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return shared_tiny_run(tmp_path_factory)


def _predict(tiny, video, *extra):
    return CliRunner().invoke(cli, ["predict", str(video), "--run", str(tiny["run"]), *extra])


def test_predict_lists_classes_and_the_relevance_verdict(tiny):
    video = next((tiny["data"] / "videos" / "whistling").glob("*.mp4"))
    result = _predict(tiny, video, "--views", "1x1", "--json")
    assert result.exit_code == 0, result.output
    prediction = json.loads(result.stdout)
    names = [name for name, _ in prediction["top"]]
    assert sorted(names) == sorted(tiny["classes"])  # --top 5 with 3 classes: all of them, best first
    probabilities = [p for _, p in prediction["top"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1.0)
    assert prediction["audio_status"] == "ok" and prediction["alpha"] == 0.25
    # Single view: the audio is kept exactly when the score reaches alpha (masking mode, Eq. 5).
    assert prediction["audio_kept"] == float(prediction["relevance"] >= prediction["alpha"])
    text = _predict(tiny, video, "--views", "3x2")
    assert text.exit_code == 0, text.output
    assert "relevance score" in text.stdout and "whistling" in text.stdout


def test_predict_a_video_without_an_audio_track(tiny, tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, size=(25, 32, 32, 3), dtype=np.uint8)
    video = write_clip(tmp_path / "silent_film.mp4", frames, fps=25)
    result = _predict(tiny, video, "--views", "1x2", "--json")
    assert result.exit_code == 0, result.output
    prediction = json.loads(result.stdout)
    assert prediction["audio_status"] == "no_audio_stream"
    assert prediction["relevance"] is None and prediction["audio_kept"] is None
    assert len(prediction["top"]) == 3


def test_predict_on_bad_files_is_a_one_line_error(tiny, tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video")
    for path, fragment in ((garbage, "garbage.mp4"), (tmp_path / "missing.mp4", "not found")):
        result = _predict(tiny, path)
        assert result.exit_code == 2 and result.output.startswith("Error: ") and fragment in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_an_ast_run_lists_the_audioset_tags_it_hears(tiny, tmp_path):
    from tests.evaluate._fixtures import build_ast_run

    run = build_ast_run(tiny, tmp_path)
    video = next((tiny["data"] / "videos" / "playing_drums").glob("*.mp4"))
    result = CliRunner().invoke(cli, ["predict", str(video), "--run", str(run), "--views", "1x1", "--json"])
    assert result.exit_code == 0, result.output
    tags = json.loads(result.stdout)["audio_tags"]
    assert len(tags) == 5 and all(0.0 <= p <= 1.0 for _, p in tags)
    assert [p for _, p in tags] == sorted((p for _, p in tags), reverse=True)
    from avlabel.labels import load_label_set

    audioset = load_label_set("audioset")
    assert all(name in audioset for name, _ in tags)
    # The AST the cache was built with must be the one predict uses: other weights are refused.
    from tests.audio._media import save_tiny_ast

    other = save_tiny_ast(tmp_path / "other-ast", audioset.labels, seed=1)
    refused = CliRunner().invoke(cli, ["predict", str(video), "--run", str(run), "--ast", str(other)])
    assert refused.exit_code == 2 and "not the one" in refused.output


def test_a_token_run_gets_the_tokens_the_cache_would_hold(tiny, tmp_path):
    import torch

    from avlabel.audio.cache import AudioCache
    from avlabel.data.manifest import read_manifest
    from avlabel.evaluate.prediction import _embed_one_video
    from tests.evaluate._fixtures import build_ast_run

    run = build_ast_run(tiny, tmp_path, tokens=True)
    record = next(r for r in read_manifest(tiny["manifest"], check_files=False) if r.label == "playing drums")
    result = CliRunner().invoke(cli, ["predict", str(record.path), "--run", str(run), "--views", "1x2", "--json"])
    assert result.exit_code == 0, result.output
    # What predict hands the model: the tokens of the same AST pass, as `avlabel targets --tokens` cached them.
    audio, _, status = _embed_one_video(record, str(tmp_path / "audio"), None, torch.device("cpu"), tokens=True)
    assert status == "ok"
    cache = AudioCache(tmp_path / "audio")
    row = cache.lookup([record.video_id])[0]
    tokens, valid, energy = audio.tokens(0, 0)
    assert tokens.shape == (101, 32) and valid.sum() == cache.token_length[row] > 0
    np.testing.assert_allclose(tokens, cache.tokens[row].astype(np.float32), atol=3e-3, rtol=2e-3)
    np.testing.assert_allclose(energy, cache.token_energy[row], rtol=1e-6)
