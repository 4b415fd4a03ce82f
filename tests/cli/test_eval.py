"""`avlabel eval` end to end on a tiny synthetic benchmark and a saved run, plus its bad inputs."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from avlabel.cli import cli
from tests.evaluate._fixtures import shared_tiny_run, tiny_synth_args


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return shared_tiny_run(tmp_path_factory)


def _eval(tiny, output, *extra, manifest=None):
    args = [
        "eval",
        "--run",
        str(tiny["run"]),
        "--manifest",
        str(manifest or tiny["manifest"]),
        "--workers",
        "0",
        "-o",
        str(output),
        *extra,
    ]
    return CliRunner().invoke(cli, args)


def _test_rows(manifest):
    with open(manifest, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["split"] == "test"]


def test_eval_writes_metrics_predictions_and_confusion(tiny, tmp_path):
    result = _eval(tiny, tmp_path / "eval", "--views", "3x2")
    assert result.exit_code == 0, result.output
    assert "top-1" in result.stdout and "audio dropped" in result.stdout
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    test_rows = _test_rows(tiny["manifest"])
    # Every video evaluated on its full 3 crops x 2 clips grid.
    assert metrics["videos"] == metrics["evaluated"] == len(test_rows) and metrics["incomplete"] == 0
    assert metrics["views"] == "3x2" and metrics["skipped_videos"] == []
    with open(tmp_path / "eval" / "predictions.csv", newline="") as handle:
        predictions = list(csv.DictReader(handle))
    assert sorted(p["video_id"] for p in predictions) == sorted(r["video_id"] for r in test_rows)
    top1 = np.mean([p["label"] == p["predicted"] for p in predictions])
    assert metrics["top1"] == pytest.approx(top1)
    assert metrics["top5"] == 1.0  # 3 classes: the true class is always in the top 5
    assert np.sum(metrics["confusion_matrix"]) == len(test_rows)
    assert list(metrics["per_class_accuracy"]) == tiny["classes"]
    assert (tmp_path / "eval" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The relevance network is judged against the targets and the benchmark's true relevance.
    relevance = metrics["relevance"]
    assert 0.0 <= relevance["mean_score"] <= 1.0 and 0.0 <= relevance["drop_rate"] <= 1.0
    with open(tiny["tags"], newline="") as handle:
        flags = {row["video_id"]: int(row["relevant"]) for row in csv.DictReader(handle)}
    assert relevance["vs_relevant"]["count"] == relevance["items_with_audio"] <= len(test_rows)
    assert relevance["vs_relevant"]["positives"] <= sum(flags[r["video_id"]] for r in test_rows)
    assert relevance["vs_targets"]["count"] == relevance["items_with_audio"]


def test_single_view_probabilities_match_a_direct_forward_pass(tiny, tmp_path):
    """The eval pipeline feeds the model what training would: same clip, crop, flow and audio window."""
    from avlabel.data.dataset import VideoClipDataset
    from avlabel.data.manifest import read_manifest
    from avlabel.labels import load_label_set
    from avlabel.train.checkpoint import load_run

    assert _eval(tiny, tmp_path / "eval", "--views", "1x1").exit_code == 0
    with open(tmp_path / "eval" / "predictions.csv", newline="") as handle:
        predictions = {p["video_id"]: p for p in csv.DictReader(handle)}
    loaded = load_run(tiny["run"])
    label_set = load_label_set(tiny["data"] / "classes.txt")
    rows = read_manifest(tiny["manifest"]).split("test")
    clips = VideoClipDataset(
        rows,
        label_set,
        mode="test",
        num_frames=4,
        stride=4,
        num_clips=1,
        num_crops=1,
        size=32,
        flow_on_the_fly=True,
        rgb_mean=loaded.model_config.rgb_mean,
        rgb_std=loaded.model_config.rgb_std,
    )
    from avlabel.audio.cache import AudioCache

    cache = AudioCache(tiny["audio"])
    embedding, present = cache.read(cache.lookup([r.video_id for r in rows], 0))
    with torch.no_grad():
        for i, record in enumerate(rows):
            item = clips[i]
            output = loaded.model(
                rgb=item["rgb"][None],
                flow=item["flow"][None],
                audio=torch.from_numpy(embedding[i : i + 1]),
                audio_present=torch.tensor([bool(present[i])]),
            )
            probabilities = torch.softmax(output.logits[0].double(), dim=0)
            expected = predictions[record.video_id]
            assert loaded.classes[int(probabilities.argmax())] == expected["predicted"]
            assert float(probabilities.max()) == pytest.approx(float(expected["probability"]), abs=1e-4)
            if present[i]:
                assert float(output.rev[0]) == pytest.approx(float(expected["relevance"]), abs=1e-4)


def test_a_checkpoint_file_evaluates_into_its_run_directory(tiny):
    checkpoint = tiny["run"] / "checkpoints" / "best.safetensors"
    args = ["eval", "--run", str(checkpoint), "--manifest", str(tiny["manifest"]), "--views", "1x1", "--workers", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tiny["run"] / "eval" / "test-best" / "metrics.json").read_text())
    assert metrics["checkpoint"] == str(checkpoint) and metrics["audio_cache"] == str(tiny["audio"])


def test_undecodable_video_is_skipped_and_listed(tiny, tmp_path):
    manifest = tmp_path / "manifest.csv"
    with open(tiny["manifest"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["path"] = str(tiny["data"] / row["path"])
    broken = next(row for row in rows if row["split"] == "test")
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    broken["path"] = str(tmp_path / "broken.mp4")
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    # The audio cache of this manifest: the broken file is one of its unreadable items.
    audio = tmp_path / "audio"
    targets = CliRunner().invoke(
        cli,
        [
            "targets",
            "--manifest",
            str(manifest),
            "--savld",
            str(tiny["data"] / "savld.json"),
            "--tags",
            str(tiny["tags"]),
            "--embedder",
            "logmel",
            "--k",
            "5",
            "--windows",
            "2",
            "--workers",
            "0",
            "-o",
            str(audio),
        ],
    )
    assert targets.exit_code == 0, targets.output
    result = _eval(tiny, tmp_path / "eval", "--views", "1x2", "--audio", str(audio), manifest=manifest)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["skipped_videos"] == [broken["video_id"]]
    assert metrics["evaluated"] == metrics["videos"] - 1
    assert broken["video_id"] in (tmp_path / "eval" / "skipped.tsv").read_text()


def test_a_manifest_of_other_videos_under_the_same_ids_is_refused(tiny, tmp_path):
    """Another draw of the benchmark has the run's video ids but other files: its audio cache must not be used."""
    other = tmp_path / "other"
    assert CliRunner().invoke(cli, tiny_synth_args(other, seed=7)).exit_code == 0
    result = _eval(tiny, tmp_path / "eval", "--views", "1x1", manifest=other / "manifest.csv")
    _one_line_error(
        result,
        f"the audio cache {tiny['audio']} was built from {tiny['manifest']}, not from {other / 'manifest.csv'}",
        "clips are other files under the same video_id",
        "pass --audio DIR",
    )
    assert not (tmp_path / "eval").exists()


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in result.output


def test_a_token_run_evaluates_on_a_token_cache_and_is_refused_one_without(tiny, tmp_path):
    from tests.evaluate._fixtures import _save_fresh_run, build_ast_run

    run = build_ast_run(tiny, tmp_path / "ast", tokens=True)
    result = CliRunner().invoke(
        cli, ["eval", "--run", str(run), "--manifest", str(tiny["manifest"]), "--views", "1x2", "--workers", "0"]
    )
    assert result.exit_code == 0, result.output
    # An AVT model exposes contrastive embeddings and a matching head: eval scores both, generically.
    metrics = json.loads((run / "eval" / "test-best" / "metrics.json").read_text())
    audible = metrics["retrieval"]["videos"]
    assert 1 < audible <= metrics["evaluated"] and metrics["retrieval"]["chance_r1"] == 1 / audible
    assert 0 <= metrics["retrieval"]["video_to_audio"]["r1"] <= 1
    assert metrics["matching"]["pairs"] == 2 * audible and 0 <= metrics["matching"]["accuracy"] <= 1
    plain = _save_fresh_run(
        tmp_path / "plain",
        tiny["manifest"],
        tiny["data"] / "classes.txt",
        tiny["audio"],
        tiny["classes"],
        tokens=True,
    )
    refused = CliRunner().invoke(cli, ["eval", "--run", str(plain), "--manifest", str(tiny["manifest"])])
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, refused.output
    assert f"the audio cache {tiny['audio']} holds no audio tokens" in refused.stderr
    assert "model 'avt_tiny' reads audio tokens" in refused.stderr and not (plain / "eval").exists()


def test_run_directory_without_checkpoint(tiny, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny["run"] / "config.yaml", run / "config.yaml")
    result = CliRunner().invoke(cli, ["eval", "--run", str(run), "--manifest", str(tiny["manifest"])])
    _one_line_error(result, "no checkpoints")


def test_manifest_with_classes_the_model_does_not_know(tiny, tmp_path):
    manifest = tmp_path / "manifest.csv"
    text = tiny["manifest"].read_text().replace(",whistling,test", ",juggling balls,test")
    manifest.write_text(text.replace("videos/", str(tiny["data"] / "videos") + "/"))
    _one_line_error(_eval(tiny, tmp_path / "eval", manifest=manifest), "does not know", "juggling balls")


def test_bad_views_and_split(tiny, tmp_path):
    _one_line_error(_eval(tiny, tmp_path / "eval", "--views", "2x4"), "spatial crops must be 1")
    _one_line_error(_eval(tiny, tmp_path / "eval", "--views", "three"), "CROPSxCLIPS")
    _one_line_error(_eval(tiny, tmp_path / "eval", "--split", "holdout"), "holdout")
