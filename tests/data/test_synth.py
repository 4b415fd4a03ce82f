"""The synthetic benchmark: honest labels and tags, balance, distinct classes, same seed same bytes."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest

from avlabel.data.decode import probe_video
from avlabel.data.manifest import read_manifest
from avlabel.data.synth import SynthConfig, generate_benchmark, load_synth_description, plan_clips
from avlabel.data.synth.classes import BACKGROUNDS, CLASSES, MOTIONS, SHAPES
from avlabel.data.synth.generate import _clip_task
from avlabel.data.synth.sounds import SOUNDS, render_sound
from avlabel.data.synth.visuals import VisualParams, render_clip
from avlabel.errors import AvlabelError
from avlabel.labels import load_label_set

TINY = SynthConfig(classes=3, per_class=5, duration=1.0, visual=VisualParams(size=48))


def test_class_names_and_audio_tags_exist_in_kinetics_and_audioset():
    kinetics, audioset = load_label_set("kinetics400"), load_label_set("audioset")
    for synth_class in CLASSES:
        assert synth_class.name in kinetics.labels
        assert all(tag in audioset.labels for tag in synth_class.audio_labels), synth_class
        assert synth_class.sound in SOUNDS and synth_class.shape in SHAPES and synth_class.motion in MOTIONS
    for sound, tags in BACKGROUNDS:
        assert sound in SOUNDS and all(tag in audioset.labels for tag in tags)


@pytest.mark.parametrize("count", [8, 12])
def test_shapes_and_motions_are_shared_pairwise_never_both(count):
    classes = CLASSES[:count]
    assert len({(c.shape, c.motion) for c in classes}) == count
    assert set(Counter(c.shape for c in classes).values()) == {2}
    assert set(Counter(c.motion for c in classes).values()) == {2}


def test_plan_is_balanced_and_stratified():
    plans = plan_clips(SynthConfig())
    assert Counter(plan.class_index for plan in plans) == {index: 40 for index in range(8)}
    for class_index in range(8):
        mine = [plan for plan in plans if plan.class_index == class_index]
        assert Counter(plan.split for plan in mine) == {"train": 24, "val": 8, "test": 8}
        for split, size in (("train", 24), ("val", 8), ("test", 8)):
            assert sum(plan.relevant for plan in mine if plan.split == split) == size // 2
        own = CLASSES[class_index]
        for plan in mine:
            assert (plan.audio_labels == own.audio_labels) == plan.relevant
            assert (plan.sound_source == own.name) == plan.relevant
    irrelevant = Counter(plan.sound_source == "background" for plan in plans if not plan.relevant)
    assert 0.35 < irrelevant[True] / sum(irrelevant.values()) < 0.65


def test_relevant_fraction_extremes():
    assert all(plan.relevant for plan in plan_clips(dataclasses.replace(TINY, relevant_fraction=1.0)))
    assert not any(plan.relevant for plan in plan_clips(dataclasses.replace(TINY, relevant_fraction=0.0)))


def _digests(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}  # fmt: skip


def test_same_seed_same_bytes_in_any_process_and_encode_order_and_files_are_real(tmp_path, monkeypatch):
    first = generate_benchmark(tmp_path / "a", TINY, workers=1)
    # The workers encode other clips before each one (chunks of 4), and glibc fills their fresh
    # heap memory with 0xA5: an encoder reading memory it never wrote (as x264's macroblock tree
    # did at 48 px) gives other bytes there than in this process.
    monkeypatch.setenv("MALLOC_PERTURB_", "165")
    generate_benchmark(tmp_path / "b", TINY, workers=2)
    monkeypatch.delenv("MALLOC_PERTURB_")
    generate_benchmark(tmp_path / "c", dataclasses.replace(TINY, seed=1), workers=1)
    a, b, c = (_digests(tmp_path / name) for name in "abc")
    assert a == b
    # The last clip encoded first and alone, in a fresh process (in "a" it came after all others),
    # over other heap contents again.
    last = plan_clips(TINY)[-1]
    monkeypatch.setenv("MALLOC_PERTURB_", "77")
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        pool.submit(_clip_task, (last, TINY, tmp_path / "alone.mp4")).result()
    alone = hashlib.sha256((tmp_path / "alone.mp4").read_bytes()).hexdigest()
    assert alone == a[f"videos/whistling/{last.video_id}.mp4"]
    assert len(a) == 3 * 5 + 4
    assert a["videos/playing_drums/playing_drums_0000.mp4"] != c["videos/playing_drums/playing_drums_0000.mp4"]
    assert first["clips"] == 15

    manifest = read_manifest(tmp_path / "a" / "manifest.csv", load_label_set("kinetics400"))
    assert manifest.labels() == ["playing drums", "playing trumpet", "whistling"]
    classes = load_label_set(tmp_path / "a" / "classes.txt")
    assert classes.labels == ("playing drums", "playing trumpet", "whistling")
    read_manifest(tmp_path / "a" / "manifest.csv", classes)  # the benchmark's own label set fits
    info = probe_video(manifest[0].path)
    assert (info.num_frames, info.fps, info.width, info.height, info.has_audio) == (25, 25.0, 48, 48, True)
    with open(tmp_path / "a" / "audio_tags.csv", newline="") as handle:
        tags = list(csv.DictReader(handle))
    assert [row["video_id"] for row in tags] == [record.video_id for record in manifest]
    audioset = load_label_set("audioset")
    assert all(label in audioset.labels for row in tags for label in row["audio_labels"].split(";"))
    description = load_synth_description(tmp_path / "a")
    assert description["config"]["seed"] == 0 and description["config"]["visual"]["size"] == 48
    assert [clip["relevant"] for clip in description["clips"]] == [row["relevant"] == "1" for row in tags]
    assert {"visibility", "hard", "frequency", "noise_sigma"} <= set(description["clips"][0])


def test_refuses_to_write_into_a_foreign_folder(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(AvlabelError, match="not empty"):
        generate_benchmark(tmp_path, TINY)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"classes": 13}, "between 2 and 12"), ({"per_class": 2}, "at least 5"), ({"relevant_fraction": 1.5}, "within"),
     ({"visual": VisualParams(size=33)}, "even")],  # fmt: skip
)
def test_bad_parameters(changes, message):
    with pytest.raises(AvlabelError, match=message):
        dataclasses.replace(SynthConfig(), **changes)


@pytest.mark.parametrize("name", sorted(SOUNDS))
def test_sounds_are_finite_scaled_and_audible(name):
    wave = render_sound(name, np.random.default_rng(0), 16000, 16000, peak=0.5)
    assert wave.dtype == np.float32 and wave.shape == (16000,) and np.isfinite(wave).all()
    if name == "silence":
        assert not wave.any()
    else:
        assert np.abs(wave).max() == pytest.approx(0.5, rel=1e-5)
        assert np.sqrt(np.mean(wave**2)) > 0.02


@pytest.mark.parametrize(("name", "low", "high"), [("whistling", 1000, 2600), ("hum", 45, 65), ("cello", 60, 550)])
def test_sounds_sit_where_their_instrument_does(name, low, high):
    wave = render_sound(name, np.random.default_rng(3), 32000, 16000, peak=0.5)
    spectrum = np.abs(np.fft.rfft(wave))
    peak_hz = np.fft.rfftfreq(len(wave), 1 / 16000)[spectrum.argmax()]
    assert low <= peak_hz <= high


@pytest.mark.parametrize(("motion", "horizontal"), [("sway", True), ("bounce", False)])
def test_motion_patterns_move_the_object_the_class_way(motion, horizontal):
    clean = VisualParams(size=96, clutter=0, distractors=0, noise_sigma=(0, 0), shake_px=0, hard_fraction=0.0,
                         visibility=(1.0, 1.0))  # fmt: skip
    frames, _ = render_clip(np.random.default_rng(0), "disk", motion, 1.0, 50, 25.0, clean)
    changed = np.abs(frames.astype(int) - np.median(frames, axis=0)).sum(-1) > 60  # (T, H, W) object pixels
    ys, xs = np.nonzero(changed.any(0))
    x_extent, y_extent = np.ptp(xs), np.ptp(ys)
    assert (x_extent > 2 * y_extent) if horizontal else (y_extent > 2 * x_extent)
