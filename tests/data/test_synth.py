"""The synthetic benchmark: honest labels and tags, clean targets, exact sound mixtures, a visual
cue that survives the training transforms, distinct classes, same seed same bytes."""

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
import torch

from avlabel.audio.targets import overlap_target
from avlabel.data.dataset import VideoClipDataset
from avlabel.data.decode import probe_video
from avlabel.data.manifest import read_manifest
from avlabel.data.synth import SynthConfig, generate_benchmark, load_synth_description, plan_clips
from avlabel.data.synth.classes import BACKGROUNDS, CLASSES, MOTIONS, SHAPES
from avlabel.data.synth.generate import AUDIO_KINDS, _clip_task, render_plan
from avlabel.data.synth.hue_drift import HueDriftParams, class_elevation, class_hue
from avlabel.data.synth.shape_motion import ShapeMotionParams, render_shape_motion
from avlabel.data.synth.sounds import SOUNDS, render_sound
from avlabel.data.synth.visuals import VisualParams
from avlabel.errors import AvlabelError
from avlabel.labels import load_label_set
from avlabel.models.config import ModelConfig
from avlabel.savld import load_savld

TINY = SynthConfig(classes=3, per_class=5, duration=1.0, visual=VisualParams(size=48))
SHIPPED_SAVLD = Path(__file__).parents[2] / "data_labels" / "savld" / "kinetics400-audioset-bert-k10-cosine.txt"


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


def test_default_classes_get_clean_relevance_targets_from_the_shipped_dictionary():
    """With the Kinetics-400 x AudioSet SAVLD (MiniLM, k = 10) that ``avlabel savld`` builds, a
    default class's own sound scores 1 and every other class's sound 0 (no dictionary artefacts)."""
    savld = load_savld(SHIPPED_SAVLD)
    classes = SynthConfig().class_table
    rows = {c.name: {label for label, _ in savld.audio_labels(c.name)} for c in classes}
    targets = np.array(
        [
            [
                overlap_target(len(set(sound.audio_labels) & rows[c.name]), len(sound.audio_labels), savld.k)
                for c in classes
            ]
            for sound in classes
        ]
    )
    np.testing.assert_array_equal(targets, np.eye(len(classes)))


def _mix_counts(plans, class_index, split):
    kinds = Counter(plan.audio_kind for plan in plans if plan.class_index == class_index and plan.split == split)
    return tuple(kinds[kind] for kind in AUDIO_KINDS)


def test_plan_has_exact_sound_mixtures_per_class_and_split():
    plans = plan_clips(SynthConfig())
    assert Counter(plan.class_index for plan in plans) == {index: 100 for index in range(8)}
    for class_index in range(8):
        # 50/35/15 of 60, 20 and 20 clips.
        assert [_mix_counts(plans, class_index, split) for split in ("train", "val", "test")] == [
            (30, 21, 9),
            (10, 7, 3),
            (10, 7, 3),
        ]
        own = CLASSES[class_index]
        for plan in (plan for plan in plans if plan.class_index == class_index):
            assert plan.relevant == (plan.audio_kind == "own") == (plan.audio_labels == own.audio_labels)
            assert (plan.sound_source == own.name) == plan.relevant
            if plan.audio_kind == "other":
                assert plan.sound_source in {c.name for c in CLASSES[:8]} - {own.name}
            if plan.audio_kind == "background":
                assert plan.sound_source == "background" and plan.sound in {sound for sound, _ in BACKGROUNDS}


def test_per_class_mixtures_and_extremes():
    config = SynthConfig(
        classes=3, per_class=20, audio_mix=(0.0, 1.0, 0.0), class_audio_mix={"whistling": (1.0, 0.0, 0.0)}
    )
    plans = plan_clips(config)
    for split, size in (("train", 12), ("val", 4), ("test", 4)):
        assert _mix_counts(plans, 0, split) == (0, size, 0)
        assert _mix_counts(plans, 2, split) == (size, 0, 0)  # whistling
    assert not any(plan.relevant for plan in plan_clips(dataclasses.replace(TINY, audio_mix=(0.0, 0.5, 0.5))))


def test_plan_is_deterministic_per_seed():
    assert plan_clips(SynthConfig()) == plan_clips(SynthConfig())
    assert plan_clips(SynthConfig()) != plan_clips(SynthConfig(seed=1))


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


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
    assert {"hue", "elevation", "side", "noise_sigma", "audio_kind"} <= set(description["clips"][0])


def test_refuses_to_write_into_a_foreign_folder(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(AvlabelError, match="not empty"):
        generate_benchmark(tmp_path, TINY)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"classes": 13}, "between 2 and 12"),
        ({"per_class": 2}, "at least 5"),
        ({"audio_mix": (0.5, 0.6, 0.0)}, "sum to 1"),
        ({"audio_mix": (0.5, 0.5)}, "three"),
        ({"class_audio_mix": {"dancing": (1.0, 0.0, 0.0)}}, "not one of the benchmark"),
        ({"visual": VisualParams(size=33)}, "even"),
        ({"visual": VisualParams(cue="texture")}, "hue-drift, shape-motion"),
        ({"visual": VisualParams(hue_drift=HueDriftParams(hue_sigma=-0.1))}, ">= 0 radians"),
    ],
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
    clean = ShapeMotionParams(
        clutter=0, distractors=0, noise_sigma=(0, 0), shake_px=0, hard_fraction=0.0, visibility=(1.0, 1.0)
    )
    synth_class = dataclasses.replace(CLASSES[0], shape="disk", motion=motion, speed=1.0)
    frames, _ = render_shape_motion(np.random.default_rng(0), synth_class, 50, 25.0, 96, clean)
    changed = np.abs(frames.astype(int) - np.median(frames, axis=0)).sum(-1) > 60  # (T, H, W) object pixels
    ys, xs = np.nonzero(changed.any(0))
    x_extent, y_extent = np.ptp(xs), np.ptp(ys)
    assert (x_extent > 2 * y_extent) if horizontal else (y_extent > 2 * x_extent)


def test_hue_drift_draws_scatter_around_the_class_cues_by_their_sigmas():
    config = SynthConfig(classes=4, per_class=60, duration=0.25, visual=VisualParams(size=32))  # 6 frames per clip
    hue_error, elevation_error = [], []
    for plan in plan_clips(config):
        _, _, draws = render_plan(plan, config)
        hue_error.append((draws["hue"] - class_hue(plan.class_index, 4) + np.pi) % (2 * np.pi) - np.pi)
        elevation_error.append(draws["elevation"] - class_elevation(plan.class_index, 4))
    assert np.std(hue_error) == pytest.approx(0.4, rel=0.1)
    assert np.std(elevation_error) == pytest.approx(0.3, rel=0.1)


@pytest.fixture(scope="module")
def exact_cue_bench(tmp_path_factory):
    """4 classes whose clips show exactly their class's hue and pan direction (both sigmas 0)."""
    root = tmp_path_factory.mktemp("cue")
    visual = VisualParams(size=64, hue_drift=HueDriftParams(hue_sigma=0.0, drift_sigma=0.0))
    config = SynthConfig(classes=4, per_class=5, duration=1.2, visual=visual)
    generate_benchmark(root, config, workers=1)
    return root, config


def test_hue_and_pan_survive_the_training_transforms(exact_cue_bench):
    """Random-resized crops (area down to 25%, aspect jitter), flips and normalisation keep both
    cues: mean colours of the items cluster by class, and the flow's elevation is the class's."""
    root, config = exact_cue_bench
    classes = load_label_set(root / "classes.txt")
    defaults = ModelConfig()  # any RGB statistics: the check below does not depend on them
    dataset = VideoClipDataset(
        read_manifest(root / "manifest.csv", classes),
        classes,
        mode="train",
        num_frames=4,
        stride=4,
        size=32,
        flow_on_the_fly=True,
        rgb_mean=defaults.rgb_mean,
        rgb_std=defaults.rgb_std,
    )
    torch.manual_seed(0)
    items = [dataset[index] for _ in range(3) for index in range(len(dataset))]
    labels = np.array([item["label"] for item in items])
    colours = np.stack([item["rgb"].mean(dim=(1, 2, 3)).numpy() for item in items])  # (N, 3), normalised space
    centroids = np.stack([colours[labels == k].mean(0) for k in range(4)])
    nearest = np.linalg.norm(colours[:, None] - centroids[None], axis=-1).argmin(1)
    assert (nearest == labels).all()
    flows = np.stack([item["flow"].mean(dim=(1, 2, 3)).numpy() for item in items])  # (N, 2): mean x, y displacement
    elevation = np.arctan2(-flows[:, 1], np.abs(flows[:, 0]))
    expected = np.array([class_elevation(k, 4) for k in labels])
    assert np.abs(elevation - expected).max() < np.radians(12)  # neighbours are 45 degrees apart
    assert (flows[:, 0] > 0).any() and (flows[:, 0] < 0).any()  # left and right pans (and flips) both occur
