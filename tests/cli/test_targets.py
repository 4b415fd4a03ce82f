"""`avlabel targets`: cache + targets + report end to end on real files, resume, --tags, and user errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from avlabel.audio.cache import AudioCache
from avlabel.audio.targets import RelevanceTargets
from avlabel.cli import cli
from avlabel.data.manifest import ClipRecord, write_manifest
from tests.audio._media import make_savld, save_tiny_ast, write_media

_CLASSES = ("playing drums", "whistling")
_SAVLD = (("Drum", "Drum kit", "Snare drum"), ("Whistling", "Whistle", "Speech"))
_CLIPS = (  # video_id, media, class, tags, relevant
    ("c1", "tone_wav", 0, "Drum;Drum kit;Snare drum", 1),  # A == B: IoU 1
    ("c2", "stereo_mp4", 0, "Speech", 0),  # nothing in common: 0
    ("c3", "no_audio_mp4", 1, "Whistling", 0),  # tagged, but there is no audio: 0
    ("c4", "noise_wav", 1, "Whistling;Whistle;Speech;Music", 1),  # B inside A (k=3 < 4): 1 after normalising
    ("c5", "garbage_mp4", 1, "Music", 0),  # unreadable: skipped and listed
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from avlabel.labels import load_label_set
    from avlabel.savld import save_savld

    root = tmp_path_factory.mktemp("targets")
    audioset = load_label_set("audioset")
    media = write_media(root / "media")
    records = [ClipRecord(video_id, media[name], _CLASSES[c], "train") for video_id, name, c, _, _ in _CLIPS]
    neighbours = [[audioset.index(label) for label in labels] for labels in _SAVLD]
    with open(root / "tags.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "audio_labels", "relevant"])
        writer.writerows((video_id, tags, relevant) for video_id, _, _, tags, relevant in _CLIPS)
    return {
        "root": root,
        "manifest": write_manifest(records, root / "manifest.csv"),
        "savld": save_savld(make_savld(_CLASSES, audioset, neighbours), root / "savld.json"),
        "ast": save_tiny_ast(root / "ast", audioset.labels),
        "tags": root / "tags.csv",
        "audioset": audioset,
    }


def _run(dataset, output, *extra):
    args = [
        "targets",
        "--manifest",
        str(dataset["manifest"]),
        "--savld",
        str(dataset["savld"]),
        "--workers",
        "0",
        "-o",
        str(output),
    ]
    return CliRunner().invoke(cli, [*args, *extra])


def test_targets_with_ast_writes_cache_targets_and_report(dataset, tmp_path):
    result = _run(dataset, tmp_path, "--ast", str(dataset["ast"]), "--ya", "5")
    assert result.exit_code == 0, result.output
    assert "4 computed, 1 unreadable" in result.stdout and "targets: 4 windows" in result.stdout
    for name in (
        "audio_cache.json",
        "audio_bad_items.tsv",
        "targets.npz",
        "targets.json",
        "targets.csv",
        "report.json",
        "target_histogram.png",
        "class_relevance.png",
    ):
        assert (tmp_path / name).is_file(), name
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rows"] == 4 and report["extraction"]["bad_items"] == 1
    assert set(report["fraction_at_least"]) == {"0.25", "0.5", "0.75"}
    assert {entry["label"] for entry in report["per_class"]} == set(_CLASSES)
    assert report["settings"]["ya"] == 5 and report["settings"]["k"] == 3 and report["settings"]["source"] == "ast"

    # What training reads: cache rows and targets line up with the CSV a human reads.
    cache, targets = AudioCache(tmp_path), RelevanceTargets.load(tmp_path)
    rows = cache.lookup(["c1", "c2", "c3", "c4"])
    with open(tmp_path / "targets.csv", newline="") as handle:
        written = {row["video_id"]: row for row in csv.DictReader(handle)}
    np.testing.assert_allclose(
        targets.for_items(rows), [float(written[v]["target"]) for v in ("c1", "c2", "c3", "c4")], atol=1e-4
    )
    assert written["c3"]["status"] == "no_audio_stream" and float(written["c3"]["target"]) == 0.0
    assert (targets.audio_sets[rows[[0, 1, 3]]] >= 0).sum(axis=1).tolist() == [5, 5, 5]  # top-Y_a of AST
    assert targets.meta["video_labels"]["name"] == "videos" and targets.meta["audio_labels"]["name"] == "audioset"

    again = _run(
        dataset, tmp_path, "--ast", str(dataset["ast"]), "--ya", "5", "--overlap", "dice", "--normalize", "none"
    )
    assert again.exit_code == 0, again.output
    assert "(4 cached, 0 computed, 1 unreadable" in again.stdout  # resumed: nothing recomputed
    recomputed = RelevanceTargets.load(tmp_path)
    assert (recomputed.overlap, recomputed.normalize) == ("dice", "none")
    assert json.loads((tmp_path / "report.json").read_text())["settings"]["normalize"] == "none"


def test_targets_from_tags_with_the_logmel_embedder(dataset, tmp_path):
    result = _run(dataset, tmp_path, "--tags", str(dataset["tags"]), "--embedder", "logmel", "--windows", "2")
    assert result.exit_code == 0, result.output
    cache, targets = AudioCache(tmp_path), RelevanceTargets.load(tmp_path)
    assert cache.dim == 256 and cache.probs is None and cache.num_windows == 2
    rows = cache.lookup(["c1", "c2", "c3", "c4"], window=1)
    np.testing.assert_allclose(targets.for_items(rows), [1.0, 0.0, 0.0, 1.0])
    # Intra-class augmentation: c4's audio shown with a drums video -> target of c4's audio for drums.
    np.testing.assert_allclose(targets.pairs(rows[[3]], [0]), [0.0])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["source"] == "tags" and report["rows"] == 8
    assert report["agreement_with_tags_relevant"]["0.5"] == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0}


def test_tokens_are_cached_on_request_and_kept_on_resume(dataset, tmp_path):
    result = _run(dataset, tmp_path, "--ast", str(dataset["ast"]), "--ya", "5", "--tokens")
    assert result.exit_code == 0, result.output
    assert "with audio tokens" in result.stdout
    cache = AudioCache(tmp_path)
    assert cache.header["version"] == 2 and cache.tokens.shape == (4, 101, 32)  # the tiny AST's width
    assert json.loads((tmp_path / "report.json").read_text())["settings"]["tokens"] is True
    # A rerun without the flag follows the cache: a grown manifest would get tokens too.
    again = _run(dataset, tmp_path, "--ast", str(dataset["ast"]), "--ya", "5")
    assert again.exit_code == 0 and "with audio tokens" in again.stdout, again.output
    refused = _run(dataset, tmp_path, "--ast", str(dataset["ast"]), "--ya", "5", "--no-tokens")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, refused.output
    assert "holds audio tokens, so --no-tokens cannot add to it" in refused.stderr


def _permuted_ast(dataset):
    path = dataset["root"] / "permuted-ast"
    if not path.exists():
        labels = list(dataset["audioset"].labels)
        labels[10], labels[11] = labels[11], labels[10]
        save_tiny_ast(path, labels)
    return path


def _foreign_manifest(dataset):
    path = dataset["root"] / "foreign.csv"
    write_manifest([ClipRecord("x", dataset["root"] / "media" / "tone.wav", "juggling", "train")], path)
    return path


def _partial_tags(dataset):
    path = dataset["root"] / "partial_tags.csv"
    path.write_text("video_id,audio_labels\nc1,Drum\n")
    return path


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d: ["--ast", str(_permuted_ast(d))], "in a different order (class 10 is"),
        (lambda d: ["--embedder", "logmel"], "predicts no audio labels; pass --tags FILE"),
        (lambda d: ["--ast", str(d["ast"]), "--k", "4"], "--k must be between 1 and 3"),
        (lambda d: ["--ast", str(d["ast"]), "--ya", "600"], "--ya must be between 1 and 527"),
        (lambda d: ["--tags", str(_partial_tags(d)), "--embedder", "logmel"], "4 manifest videos have no row in"),
        (lambda d: ["--manifest", str(_foreign_manifest(d)), "--ast", str(d["ast"])], "'juggling'"),
    ],
)
def test_user_errors_exit_2_with_one_line(dataset, tmp_path, make_args, message):
    result = _run(dataset, tmp_path, *make_args(dataset))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not (tmp_path / "audio_cache.json").exists()  # validated before anything is computed


def test_a_cache_is_not_reused_for_other_files_under_the_same_ids(dataset, tmp_path):
    assert _run(dataset, tmp_path, "--tags", str(dataset["tags"]), "--embedder", "logmel").exit_code == 0
    # Another manifest names another file "c1": the cached c1 is not its audio.
    records = [
        ClipRecord(
            video_id,
            dataset["root"] / "media" / ("noise.wav" if video_id == "c1" else "tone.wav"),
            _CLASSES[c],
            "train",
        )
        for video_id, _, c, _, _ in _CLIPS
    ]
    other = write_manifest(records, dataset["root"] / "colliding.csv")
    result = _run(dataset, tmp_path, "--tags", str(dataset["tags"]), "--embedder", "logmel", "--manifest", str(other))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert f"the audio cache {tmp_path} was built from {dataset['manifest']}, not from {other}" in result.stderr
    assert (
        "c1: tone.wav, " in result.stderr and "noise.wav" in result.stderr and "use another -o folder" in result.stderr
    )


def test_a_cache_from_before_source_records_is_reused_with_a_warning(dataset, tmp_path):
    assert _run(dataset, tmp_path, "--tags", str(dataset["tags"]), "--embedder", "logmel").exit_code == 0
    (tmp_path / "audio_sources.tsv").unlink()
    result = _run(dataset, tmp_path, "--tags", str(dataset["tags"]), "--embedder", "logmel")
    assert result.exit_code == 0, result.output
    assert "Warning: the audio cache" in result.stderr and "cannot be checked against" in result.stderr
