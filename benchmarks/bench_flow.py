"""Optical flow cost and accuracy: every method and preset, and what flow costs a Kinetics-400 run.

Run from the repository root::

    python benchmarks/bench_flow.py                     # CPU figures (about 3 minutes)
    python benchmarks/bench_flow.py --device cuda       # adds tvl1-torch on the GPU
    python benchmarks/bench_flow.py --json flow.json    # also write the figures as JSON

Measures, single-threaded (``cv2.setNumThreads(1)``, ``torch.set_num_threads(1)``: one flow worker
per core is how ``avlabel flow --workers N`` and DataLoader workers run), wall and CPU time:

1. accuracy: end-point error (EPE, px) against known motion on the ground-truth scenes of
   :mod:`avlabel.data.flow_truth` at 340x256 — camera motion plus an independently moving disc,
   small / medium / large (objects moving 2.5 / 5 / 11 px), two seeds each, noise sigma 1 grey level;
2. speed: frame pairs/s of the estimator alone on a real-sized 340x256 clip (camera pan over
   multi-scale texture, two moving objects; ``bench_data.py``'s clip), per wall-clock second and
   per CPU second (what one unshared core delivers: the machine may be shared);
3. the flow pipeline: decode + DIS + JPEG store per pair, storage per pair and the read time of a
   training clip's 8 stored flow frames (``bench_data.py``'s measurement), and training items/s of
   the dataset on that clip with stored flow and with flow computed on the fly (``flow_dir: null``);
4. a Kinetics-400 cost model from those rates: CPU core-hours to store flow for every frame once,
   against computing only the sampled frames' flow in every epoch.

``--device cuda`` adds tvl1-torch on the GPU (batches of 32 pairs, ``torch.compile``), timed after a
warm-up batch that includes compilation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

# Kinetics-400 (Carreira & Zisserman 2017): ~240k training clips of 10 s, 25-30 fps; the paper's
# schedule (section 4.1): 15 epochs of clips of 8 frames (avlabel's stride 8).
K400 = {"train_clips": 240_000, "seconds": 10.0, "fps": 27.5, "epochs": 15, "frames_per_clip": 8}

_SCENES = {  # (camera, object) motion in px between the two frames
    "small": ((0.6, -0.3), (2.1, 1.3)),
    "medium": ((1.37, -0.62), (-4.21, 2.83)),
    "large": ((3.4, -1.7), (-9.6, 6.2)),
}


def estimators(device: str) -> dict:
    """Name -> estimator ``(previous (N, H, W), current (N, H, W)) -> (N, H, W, 2)``."""
    import cv2

    from avlabel.data.flow_estimators import flow_estimator

    names = [("dis", preset) for preset in ("ultrafast", "fast", "medium")] + [("farneback", "medium")]
    if hasattr(cv2, "optflow"):
        names.append(("tvl1", "medium"))  # OpenCV's, from opencv-contrib-python-headless
    names += [("tvl1-torch", preset) for preset in ("ultrafast", "fast", "medium")]
    table = {
        f"{method}[{preset}]" if method in ("dis", "tvl1-torch") else method: flow_estimator(method, preset, "cpu")
        for method, preset in names
    }
    if device.startswith("cuda"):
        from avlabel.data.flow_torch import PRESETS, TVL1Flow

        table |= {
            f"tvl1-torch[{preset}] {device}": TVL1Flow(params, device=device, batch_pairs=32)
            for preset, params in PRESETS.items()
        }
    return table


def bench_accuracy(table: dict, results: dict) -> None:
    from avlabel.data.flow_estimators import estimate_pairs, to_grey
    from avlabel.data.flow_truth import end_point_error, motion_pair

    scenes = {
        (name, seed): motion_pair(camera=camera, object_motion=motion, noise=1.0, seed=seed)
        for name, (camera, motion) in _SCENES.items()
        for seed in (0, 1)
    }
    for method, estimate in table.items():
        errors = {}
        for (name, _), scene in scenes.items():
            flow = estimate_pairs(estimate, to_grey(scene.first[None]), to_grey(scene.second[None]))[0]
            errors.setdefault(name, []).append(end_point_error(flow, scene))
        for name, values in errors.items():
            results[f"epe_px[{method}, {name} motion]"] = round(float(np.mean(values)), 3)
        results[f"epe_px[{method}, mean]"] = round(float(np.mean([v for values in errors.values() for v in values])), 3)


def bench_speed(table: dict, results: dict, budget_seconds: float = 8.0) -> None:
    """Pairs/s of each estimator alone on the 340x256 clip: as many pairs as fit ``budget_seconds`` (at least 3)."""
    from bench_data import _natural_video

    from avlabel.data.flow_estimators import estimate_pairs, to_grey

    frames = to_grey(_natural_video(65, 256, 340))
    for method, estimate in table.items():
        batch = getattr(estimate, "batch_pairs", 1)
        on_gpu = "cuda" in method
        if on_gpu:  # warm-up: CUDA context, compilation
            estimate_pairs(estimate, frames[:batch], frames[1 : batch + 1])
        pairs, start, cpu_start = 0, time.perf_counter(), time.process_time()
        while pairs < 3 or time.perf_counter() - start < budget_seconds:
            first = np.arange(pairs, pairs + batch) % (len(frames) - 1)  # the clip's 64 pairs, round and round
            estimate_pairs(estimate, frames[first], frames[first + 1])
            pairs += batch
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        results[f"pairs_per_s[{method}, 340x256] wall/cpu"] = f"{pairs / wall:.2f} / {pairs / cpu:.2f}"
        # For the cost model (not printed): CPU methods per CPU second, the GPU per wall second.
        results[f"_pairs_per_s[{method}]"] = pairs / wall if on_gpu else pairs / cpu


def bench_pipeline(work: Path, results: dict) -> None:
    """Decode + flow + store, storage and reads (bench_data's measurement), and dataset items/s stored vs on the fly."""
    from bench_data import _RGB, _natural_video, _rates
    from bench_data import bench_flow as bench_flow_storage

    from avlabel.data.dataset import VideoClipDataset
    from avlabel.data.manifest import ClipRecord, Manifest
    from avlabel.data.writer import write_clip
    from avlabel.labels import load_label_set

    video = write_clip(work / "clip_340x256.mp4", _natural_video(300, 256, 340), fps=30, video_options={"g": "30"})
    storage: dict = {}
    bench_flow_storage(video, work, storage)
    keep = ("dis_medium_pairs_per_s_per_worker", "flow_storage_kb_per_pair[jpg]", "flow_read_ms_per_8_frames[jpg]")
    results |= {key: value for key, value in storage.items() if key.startswith(keep)}
    manifest = Manifest([ClipRecord("long", video, "whistling", "train")])
    common = {"modalities": ("rgb", "flow"), "num_frames": 8, "stride": 8, "size": 224, **_RGB}
    labels = load_label_set("kinetics400")
    for name, options in {"stored": {"flow_dir": work / "flow_jpg"}, "on_the_fly": {"flow_on_the_fly": True}}.items():
        rates = _rates(VideoClipDataset(manifest, labels, **common, **options))
        results[f"train_items_per_s[rgb+flow {name} (DIS medium), 340x256 crop 224] wall/cpu"] = rates


def k400_costs(results: dict) -> None:
    """Core-hours of flow for Kinetics-400: stored for every frame once, or on the fly for the sampled frames.

    Per method from the estimator's rate alone; for DIS medium also from the measured pipeline
    (decode + flow + JPEG store per pair; training items per CPU-second with stored and with
    on-the-fly flow, whose difference is what computing flow in the loader costs per clip).
    """
    stored_pairs = K400["train_clips"] * (K400["seconds"] * K400["fps"] - 1)
    on_the_fly_pairs_per_epoch = K400["train_clips"] * K400["frames_per_clip"]
    results["k400_stored_pairs_millions"] = round(stored_pairs / 1e6, 1)
    results["k400_on_the_fly_pairs_per_epoch_millions"] = round(on_the_fly_pairs_per_epoch / 1e6, 2)
    results["k400_stored_jpg_gb"] = round(stored_pairs * results["flow_storage_kb_per_pair[jpg]"] / 1e6)
    for key in [key for key in results if key.startswith("_pairs_per_s[")]:
        method, rate = key[len("_pairs_per_s[") : -1], results.pop(key)
        if "cuda" in method:
            results[f"k400_store_gpu_hours[{method}]"] = round(stored_pairs / rate / 3600, 1)
            continue
        stored, per_epoch = stored_pairs / rate / 3600, on_the_fly_pairs_per_epoch / rate / 3600
        results[
            f"k400_core_hours[{method}, estimation only] store once / on the fly per epoch / x{K400['epochs']} epochs"
        ] = f"{stored:,.0f} / {per_epoch:,.1f} / {per_epoch * K400['epochs']:,.0f}"
    cpu_rate = lambda key: float(results[key].split("/")[1])  # noqa: E731 - "wall / cpu" strings
    store_rate = cpu_rate(next(key for key in results if key.startswith("dis_medium_pairs_per_s_per_worker")))
    item = "train_items_per_s[rgb+flow {} (DIS medium), 340x256 crop 224] wall/cpu"
    extra_per_clip = 1 / cpu_rate(item.format("on_the_fly")) - 1 / cpu_rate(item.format("stored"))
    per_epoch = K400["train_clips"] * extra_per_clip / 3600
    results["k400_dis_medium_extra_cpu_ms_per_clip_on_the_fly"] = round(1e3 * extra_per_clip, 1)
    results[f"k400_core_hours[dis[medium], pipeline] store once / on the fly per epoch / x{K400['epochs']} epochs"] = (
        f"{stored_pairs / store_rate / 3600:,.0f} / {per_epoch:,.1f} / {per_epoch * K400['epochs']:,.0f}"
    )


def main() -> None:
    from bench_data import print_results

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, or cuda to add tvl1-torch on the GPU")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one, deleted after)")
    args = parser.parse_args()
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="avlabel-bench-flow-"))
    results: dict = {
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "opencv": cv2.__version__,
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
    }
    try:
        table = estimators(args.device)
        bench_accuracy(table, results)
        bench_speed(table, results)
        bench_pipeline(work, results)
        k400_costs(results)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    results["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print_results(results, args.json)


if __name__ == "__main__":
    main()
