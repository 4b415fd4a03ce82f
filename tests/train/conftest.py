"""Training fixtures: a tiny synthetic benchmark with an audio cache and relevance targets.

Built once per session through the same pieces a user runs: ``generate_benchmark`` (``avlabel
synth``) writes real MP4 files, and ``make_targets`` (``avlabel targets --tags ... --embedder
logmel``) fills the audio cache and computes IoU targets -- twice: without audio tokens (the
default, what IMD reads) and with them (``--tokens``, what AVT models read). The SAVLD is written by hand from the
benchmark's own class -> sound table (an oracle dictionary), which keeps the fixture free of
the sentence-embedding model and its start-up time; building SAVLDs is tested elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch


@dataclass(frozen=True)
class SynthBench:
    root: Path
    manifest: Path
    audio: Path  # avlabel targets -o DIR
    audio_tokens: Path  # the same with --tokens
    savld: Path
    labels: Path  # label file of the benchmark's classes
    classes: tuple[str, ...]


@pytest.fixture(scope="session")
def synth_bench(tmp_path_factory) -> SynthBench:
    from avlabel.audio.pipeline import make_targets
    from avlabel.data.synth import SynthConfig, generate_benchmark
    from avlabel.data.synth.shape_motion import ShapeMotionParams
    from avlabel.data.synth.visuals import VisualParams

    root = tmp_path_factory.mktemp("synth")
    # 4 classes x 20 clips: 12 train / 8 val per class (no test split needed here), 1.6 s at
    # 32 px, the shape-motion cue with clutter and noise off, so that a tiny model sees the
    # class object within the few dozen steps a test can afford; 9 clips in 10 carry their
    # class's sound.
    clean = ShapeMotionParams(
        clutter=0, distractors=0, noise_sigma=(1.0, 2.0), shake_px=0.0, object_radius=(5.0, 7.0), hard_fraction=0.0
    )
    config = SynthConfig(
        classes=4,
        per_class=20,
        split_fractions=(0.6, 0.4, 0.0),
        duration=1.6,
        audio_mix=(0.9, 0.05, 0.05),
        visual=VisualParams(size=32, cue="shape-motion", shape_motion=clean),
    )
    generate_benchmark(root, config)
    classes = tuple(c.name for c in config.class_table)
    # A 4-way label set: a 400-way Kinetics head would spend the tiny budget unlearning 396 classes.
    labels = root / "synth_classes.txt"
    labels.write_text("\n".join(classes) + "\n")
    savld = _oracle_savld(root / "savld.json", labels, config.class_table)
    for audio, tokens in ((root / "audio", False), (root / "audio-tokens", True)):
        make_targets(
            root / "manifest.csv",
            savld,
            audio,
            tags=root / "audio_tags.csv",
            embedder="logmel",
            progress=False,
            tokens=tokens,
        )
    return SynthBench(root, root / "manifest.csv", root / "audio", root / "audio-tokens", savld, labels, classes)


def _oracle_savld(path: Path, labels: Path, classes) -> Path:
    """Class -> AudioSet dictionary (k=10) listing each class's own sounds first, then fillers."""
    from avlabel.labels import load_label_set
    from avlabel.savld import Savld, save_savld

    video, audio = load_label_set(labels), load_label_set("audioset")
    k = 10
    # Fillers: AudioSet labels no synthetic clip plays, so only the class's own sound overlaps.
    fillers = [
        audio.index(name)
        for name in ("Speech", "Car", "Dog", "Rain", "Wind", "Thunder", "Engine", "Bird", "Cat", "Train")
    ]
    neighbours = np.tile(np.array(fillers[:k]), (len(video), 1))
    for synth_class in classes:
        own = [audio.index(name) for name in synth_class.audio_labels]
        neighbours[video.index(synth_class.name)] = (own + fillers)[:k]
    scores = np.linspace(1.0, 0.5, k, dtype=np.float32)[None].repeat(len(video), axis=0)
    save_savld(Savld(video, audio, k, "cosine", neighbours, scores, {"backend": "oracle", "k": k}), path)
    return path


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared 2-core machine, OpenMP spin-waiting makes tiny models 50x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# The tiny model of `tiny_overrides` as an AVT: its two layers fused by the bottleneck from layer 1.
AVT = {"model__fusion": "bottleneck", "model__fusion_layer": 1}


def tiny_overrides(bench: SynthBench, **extra) -> list[str]:
    """``--set`` overrides for a tiny, fast, CPU training run on the synthetic benchmark."""
    settings = {
        "data.manifest": str(bench.manifest),
        "data.label_set": str(bench.labels),
        "data.frames": 4,
        "data.stride": 6,
        "data.size": 32,
        "data.workers": 0,
        "audio.cache": str(bench.audio),
        "audio.savld": str(bench.savld),
        "model.name": "imd_tiny",
        "model.pretrained": "null",
        "model.depth": 2,
        "model.embed_dim": 32,
        "model.num_heads": 2,
        "model.audio_hidden_dim": 32,
        "model.space_time_blocks": 1,
        "optim.name": "adamw",
        "optim.lr": 3e-3,
        "optim.weight_decay": 0.01,
        "optim.global_batch": 16,
        "optim.micro_batch": 8,
        "optim.warmup_steps": 2,
        "schedule.epochs": 2,
        "schedule.log_every": 1,
        "runtime.device": "cpu",
    }
    settings.update({key.replace("__", "."): value for key, value in extra.items()})
    return [f"{key}={value}" for key, value in settings.items()]


def torchrun_two_ranks(*args: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 ARGS`` on this checkout (gloo on the CPU, one
    thread per rank), its output captured; the caller asserts on the exit status."""
    import avlabel

    repo = Path(avlabel.__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False)
