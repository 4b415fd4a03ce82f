"""Data-layer speed: dataset clips/s per worker, decoded frames per clip, DIS flow pairs/s, storage.

Run from the repository root::

    python benchmarks/bench_data.py                 # everything, in a temporary folder
    python benchmarks/bench_data.py --json out.json # also write the figures as JSON

Measures, each in one process (= one DataLoader worker; throughput scales with workers until the
cores run out):

Rates are printed as "wall / cpu": items per wall-clock second and per CPU second of the (single-
threaded) process; on a shared machine the CPU figure is what one unshared core delivers.

1. ``avlabel synth`` generation time (the default benchmark: 8 classes x 100 clips of 2 s at
   64 px) with 2 worker processes.
2. Training ``VideoClipDataset`` items/s on the synthetic clips as the synthetic experiment reads
   them (T=4, stride 8, crop 32): RGB only, RGB + stored flow (JPEG), RGB + on-the-fly flow.
3. The same on a 10 s 340x256 30 fps H.264 file (crop 224, T=8, stride 8), for a 1 s GOP and
   x264's default 250-frame GOP, with the frames the decoder had to produce per clip (the whole
   file is 300 frames).
4. DIS flow frame pairs/s at a 256 px short side, and storage per frame pair and read time for
   one clip's 8 flow frames as JPEG pairs versus compressed npz.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from avlabel.models.config import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD

# The named models' RGB statistics (the cost of normalising does not depend on the values).
_RGB = {"rgb_mean": IMAGENET_INCEPTION_MEAN, "rgb_std": IMAGENET_INCEPTION_STD}


def _natural_video(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A camera panning over multi-scale texture with two objects moving on their own."""
    import cv2

    rng = np.random.default_rng(seed)
    canvas = np.zeros((height + 64, width + 2 * num_frames + 64, 3), np.float32)
    for scale in (64, 16, 4):  # multi-octave texture, like natural images' 1/f spectrum
        coarse = rng.uniform(0, 1, (canvas.shape[0] // scale + 2, canvas.shape[1] // scale + 2, 3)).astype(np.float32)
        canvas += (
            cv2.resize(coarse, (canvas.shape[1], canvas.shape[0]), interpolation=cv2.INTER_CUBIC)[
                : canvas.shape[0], : canvas.shape[1]
            ]
            * scale
        )
    canvas = (canvas - canvas.min()) / (canvas.max() - canvas.min()) * 255
    frames = []
    for t in range(num_frames):
        frame = canvas[32 : 32 + height, 2 * t : 2 * t + width].copy()  # pan 2 px/frame
        cx, cy = int(width / 2 + 80 * np.sin(t / 15)), int(height / 2 + 40 * np.cos(t / 20))
        cv2.circle(frame, (cx, cy), 25, (230, 60, 40), -1)
        cv2.rectangle(frame, (20 + t % 200, 30), (60 + t % 200, 90), (40, 200, 90), -1)
        frames.append(frame)
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def _rates(dataset, seconds: float = 6.0) -> str:
    """Items per wall-clock second and per CPU second ("wall / cpu"): on a busy machine the CPU
    rate is what one unshared core would deliver."""
    import torch

    torch.manual_seed(0)
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        item = dataset[count % len(dataset)]
        assert "error" not in item, item
        count += 1
    return f"{count / (time.perf_counter() - start):.1f} / {count / (time.process_time() - cpu_start):.1f}"


def bench_synth(work: Path, results: dict) -> Path:
    from avlabel.data.synth import SynthConfig, generate_benchmark

    out = work / "synth"
    cpu_before = time.process_time() + sum(os.times()[2:4])
    summary = generate_benchmark(out, SynthConfig(), workers=2)
    cpu = time.process_time() + sum(os.times()[2:4]) - cpu_before
    results["synth_default_seconds_2_workers"] = round(summary["seconds"], 1)
    results["synth_default_cpu_seconds"] = round(cpu, 1)
    results["synth_default_megabytes"] = round(summary["bytes"] / 1e6, 1)
    return out


def bench_dataset_synth(synth_dir: Path, work: Path, results: dict) -> None:
    from avlabel.data.dataset import VideoClipDataset
    from avlabel.data.flow_extract import FlowConfig, run_flow
    from avlabel.data.manifest import read_manifest
    from avlabel.labels import load_label_set

    manifest = read_manifest(synth_dir / "manifest.csv").split("train")
    labels = load_label_set("kinetics400")
    run_flow(manifest, work / "synth_flow", FlowConfig(), workers=2)
    common = {"num_frames": 4, "stride": 8, "size": 32, **_RGB}
    for name, options in {
        "rgb": {"modalities": ("rgb",)},
        "rgb+stored_flow": {"flow_dir": work / "synth_flow"},
        "rgb+on_the_fly_flow": {"flow_on_the_fly": True},
    }.items():
        results[f"synth_train_clips_per_s_per_worker[{name}] wall/cpu"] = _rates(
            VideoClipDataset(manifest, labels, **options, **common)
        )


def bench_dataset_long(work: Path, results: dict) -> Path:
    from avlabel.data.dataset import VideoClipDataset
    from avlabel.data.decode import VideoReader
    from avlabel.data.manifest import ClipRecord, Manifest
    from avlabel.data.sampling import sample_train_clip
    from avlabel.data.writer import write_clip
    from avlabel.labels import load_label_set

    frames = _natural_video(300, 256, 340)
    labels = load_label_set("kinetics400")
    path = None
    for gop in (30, 250):
        path = write_clip(
            work / f"long_gop{gop}.mp4", frames, fps=30, video_options={"g": str(gop), "preset": "medium"}
        )
        manifest = Manifest([ClipRecord("long", path, "whistling", "train")])
        dataset = VideoClipDataset(manifest, labels, modalities=("rgb",), num_frames=8, stride=8, size=224, **_RGB)
        results[f"long_340x256_30fps_train_clips_per_s_per_worker[gop={gop}] wall/cpu"] = _rates(dataset)
        rng, decoded = np.random.default_rng(0), []
        for _ in range(20):
            with VideoReader(path) as reader:
                reader.frames(sample_train_clip(reader.num_frames, 8, 8, rng))
                decoded.append(reader.decoded_frames)
        results[f"long_decoded_frames_per_clip[gop={gop}] (file has 300)"] = round(float(np.mean(decoded)), 1)
    return path


def bench_flow(video: Path, work: Path, results: dict) -> None:
    from avlabel.data.flow_extract import FlowConfig, run_flow
    from avlabel.data.flow_format import FlowStore
    from avlabel.data.manifest import ClipRecord, Manifest

    manifest = Manifest([ClipRecord("long", video, "whistling", "train")])
    for format in ("jpg", "npz"):
        out = work / f"flow_{format}"
        cpu_start = time.process_time()
        summary = run_flow(manifest, out, FlowConfig(format=format), workers=1)
        if format == "jpg":
            cpu = time.process_time() - cpu_start
            results["dis_medium_pairs_per_s_per_worker[256px, decode+flow+store] wall/cpu"] = (
                f"{summary.flow_frames / summary.seconds:.1f} / {summary.flow_frames / cpu:.1f}"
            )
        stored = sum(
            path.stat().st_size for path in out.rglob("*") if path.is_file() and not path.name.startswith("flow_")
        )
        results[f"flow_storage_kb_per_pair[{format}]"] = round(stored / summary.flow_frames / 1e3, 2)
        store, record = FlowStore(out), manifest[0]
        start, reads = time.perf_counter(), 0
        while time.perf_counter() - start < 2.0:
            store.read(record, np.arange(8) * 8 + reads % 200)
            reads += 1
        results[f"flow_read_ms_per_8_frames[{format}]"] = round((time.perf_counter() - start) / reads * 1e3, 2)
    jpg, npz = FlowStore(work / "flow_jpg"), FlowStore(work / "flow_npz")
    error = np.abs(jpg.read(manifest[0], np.arange(299)) - npz.read(manifest[0], np.arange(299)))
    results["flow_jpg_abs_error_px[mean]"] = round(float(error.mean()), 4)
    results["flow_jpg_abs_error_px[p99]"] = round(float(np.percentile(error, 99)), 3)

    from avlabel.data.flow_estimators import flow_estimator, to_grey

    frames = to_grey(_natural_video(41, 256, 340))
    for preset in ("ultrafast", "fast", "medium"):
        estimate = flow_estimator("dis", preset)
        start, cpu_start = time.perf_counter(), time.process_time()
        for previous, current in zip(frames[:-1], frames[1:], strict=True):
            estimate(previous, current)
        results[f"dis_{preset}_pairs_per_s[340x256, estimation only] wall/cpu"] = (
            f"{40 / (time.perf_counter() - start):.1f} / {40 / (time.process_time() - cpu_start):.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one, deleted after)")
    args = parser.parse_args()
    import cv2
    import torch

    # Per-worker figures: DataLoader workers and flow workers run single-threaded.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="avlabel-bench-data-"))
    results: dict = {"cpu_count": os.cpu_count(), "load_average_1min_at_start": round(os.getloadavg()[0], 2)}
    try:
        synth_dir = bench_synth(work, results)
        bench_dataset_synth(synth_dir, work, results)
        video = bench_dataset_long(work, results)
        bench_flow(video, work, results)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    results["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print_results(results, args.json)


def print_results(results: dict, json_path: Path | None = None) -> None:
    """Print the figures as aligned ``name  value`` lines; also write them to ``json_path`` as JSON."""
    width = max(len(key) for key in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    if json_path:
        json_path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
