"""Audio pipeline throughput: where the time of `avlabel targets` goes, and how fast training reads the cache.

Measures, on synthetic but real media files (10 s clips, H.264 video + 44.1 kHz stereo AAC, like
Kinetics):

1. decode + resample (PyAV / libswresample) per clip, one CPU worker, and the resampling alone;
2. the AST filterbank per clip: the batched torch implementation and transformers'
   ASTFeatureExtractor, one CPU thread, and the torch one on the GPU when there is one (plus the
   pinned host-to-GPU copy of the waveforms);
3. AST-base forward (random weights from ``ASTConfig()``: the same compute as the AudioSet
   checkpoint) in clips/s, on the CPU and, with CUDA, in bf16;
4. the end-to-end cache fill (decode workers + filterbank + embedder + commits) with the logmel
   embedder, which isolates the pipeline's own overhead from the model;
5. cache reads: random training batches (rows/s) through ``AudioCache.read``.

Usage::

    python benchmarks/bench_audio.py                  # CPU figures
    python benchmarks/bench_audio.py --device cuda    # adds GPU filterbank and bf16 AST forward
    python benchmarks/bench_audio.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _clip_audio(index: int, seconds: float = 10.0, rate: int = 44_100) -> np.ndarray:
    rng = np.random.default_rng(index)
    t = np.arange(round(seconds * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * (220 + 40 * index) * t)
    return np.stack([tone + 0.05 * rng.standard_normal(len(t)), tone]).astype(np.float32)


def _write_clips(directory: Path, count: int) -> list[Path]:
    from avlabel.data.writer import write_clip

    frames = np.full((100, 64, 64, 3), 80, dtype=np.uint8)  # 10 s at 10 fps: video is not what we time
    return [
        write_clip(directory / f"clip{i:03d}.mp4", frames, fps=10, audio=_clip_audio(i), sample_rate=44_100)
        for i in range(count)
    ]


def _best_of(function, repeats: int, clock=time.perf_counter) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call.

    ``clock=time.process_time`` measures this process's CPU time instead of wall time: for a
    single-threaded stage that is what one dedicated core would take, even on a busy machine.
    """
    function()
    times = []
    for _ in range(repeats):
        start = clock()
        function()
        times.append(clock() - start)
    return statistics.median(times)


def bench_decode_and_filterbank(paths: list[Path], device: str) -> dict:
    import torch

    from avlabel.audio.decode import _resample, load_windows
    from avlabel.audio.features import AstFilterbank

    torch.set_num_threads(1)  # one DataLoader worker's share
    windows = [load_windows(path) for path in paths]
    waveforms = np.concatenate([w.waveforms for w in windows])
    lengths = np.concatenate([w.lengths for w in windows])
    torch_fbank = AstFilterbank(backend="torch")
    reference_fbank = AstFilterbank(backend="transformers")
    native = _clip_audio(0).mean(axis=0)  # what the resampler gets: 10 s of 44.1 kHz mono
    stages = {
        "decode_resample": lambda: [load_windows(path) for path in paths],
        "resample_only": lambda: [_resample(native, 44_100, 16_000) for _ in paths],
        "filterbank_torch_1thread": lambda: torch_fbank(waveforms, lengths),
        "filterbank_transformers": lambda: reference_fbank(waveforms, lengths),
    }
    results = {}
    for name, stage in stages.items():
        results[f"{name}_cpu_ms_per_clip"] = 1e3 * _best_of(stage, 3, time.process_time) / len(paths)
        results[f"{name}_wall_ms_per_clip"] = 1e3 * _best_of(stage, 3) / len(paths)
    per_clip = results["decode_resample_cpu_ms_per_clip"] + results["filterbank_torch_1thread_cpu_ms_per_clip"]
    results["decode_plus_filterbank_clips_per_s_per_core"] = 1e3 / per_clip
    results["decode_only_clips_per_s_per_core"] = 1e3 / results["decode_resample_cpu_ms_per_clip"]
    torch.set_num_threads(os.cpu_count() or 1)
    if device.startswith("cuda"):
        batch = torch.from_numpy(np.tile(waveforms, (max(1, 256 // len(paths)), 1))).to(device)
        batch_lengths = torch.from_numpy(np.tile(lengths, max(1, 256 // len(paths)))).to(device)

        def gpu_fbank():
            torch_fbank(batch, batch_lengths)
            torch.cuda.synchronize()

        results["filterbank_torch_gpu_clips_per_s"] = len(batch) / _best_of(gpu_fbank, 5)
        pinned = torch.from_numpy(np.tile(waveforms, (max(1, 256 // len(paths)), 1))).pin_memory()

        def transfer():
            pinned.to(device, non_blocking=True)
            torch.cuda.synchronize()

        results["host_to_gpu_waveform_clips_per_s"] = len(pinned) / _best_of(transfer, 5)
    return results


def bench_ast_forward(device: str, batch: int, steps: int, **config) -> dict:
    """AST forward clips/s on random weights: AST-base, or ``ASTConfig`` with ``config`` overrides."""
    import torch
    from transformers import ASTConfig, ASTForAudioClassification

    from avlabel.audio.ast import AstTagger
    from avlabel.audio.features import AstFilterbank

    model = ASTForAudioClassification(ASTConfig(num_labels=527, attn_implementation="sdpa", **config))
    tagger = AstTagger(
        model, AstFilterbank(), source="random AST-base" if not config else f"random AST {config}", device=device
    )
    features = torch.randn(batch, model.config.max_length, model.config.num_mel_bins, device=device)

    def forward():
        tagger.embed(features)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    seconds = _best_of(forward, steps)
    core_seconds = _best_of(forward, 1, time.process_time)  # all threads' CPU time: robust on a shared machine
    return {
        "ast_forward_core_seconds_per_clip": core_seconds / batch,
        "ast_device": device,
        "ast_dtype": "bf16 autocast" if device.startswith("cuda") else "fp32",
        "ast_batch": batch,
        "ast_forward_clips_per_s": batch / seconds,
        "ast_params_millions": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def bench_end_to_end(paths: list[Path], workers: int, directory: Path) -> dict:
    from avlabel.audio.embedders import build_embedder
    from avlabel.audio.extract import extract_audio
    from avlabel.data.manifest import ClipRecord

    # The clips repeat under new ids so the run is long enough for the workers to matter.
    records = [ClipRecord(f"v{i:05d}", paths[i % len(paths)], "x", "train") for i in range(8 * len(paths))]
    summary = extract_audio(
        records, directory, build_embedder("logmel"), workers=workers, batch_size=16, progress=False
    )
    return {"end_to_end_workers": workers, "end_to_end_logmel_clips_per_s": summary.items_per_second}


def bench_cache_read(directory: Path, rows: int, dim: int = 768, batch: int = 256) -> dict:
    from avlabel.audio.cache import AudioCache, AudioCacheWriter

    rng = np.random.default_rng(0)
    windows = {"count": 1, "seconds": 10.0, "sample_rate": 16_000}
    labels = [f"label {i}" for i in range(527)]
    chunk = 4096
    with AudioCacheWriter(directory, {"name": "bench"}, dim, labels, windows) as writer:
        embedding = rng.standard_normal((chunk, dim)).astype(np.float16)
        probs = rng.random((chunk, 527)).astype(np.float16)
        status = np.zeros(1, np.uint8)
        for row in range(rows):
            writer.append(f"v{row:07d}", embedding[row % chunk][None], probs[row % chunk][None], status)
            if row % chunk == chunk - 1:
                writer.commit()
    cache = AudioCache(directory)
    batches = [rng.integers(0, rows, batch) for _ in range(200)]
    start = time.perf_counter()
    for rows_of_batch in batches:
        cache.read(rows_of_batch)
    seconds = time.perf_counter() - start
    id_batches = [[f"v{row:07d}" for row in rows_of_batch] for rows_of_batch in batches]
    start = time.perf_counter()
    for ids in id_batches:
        cache.lookup(ids)
    lookup_seconds = (time.perf_counter() - start) / len(batches)
    return {
        "cache_rows": rows,
        "cache_read_random_rows_per_s": len(batches) * batch / seconds,
        "cache_lookup_ids_per_s": batch / lookup_seconds,
        "cache_bytes_per_row": dim * 2 + 527 * 2 + 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (adds GPU filterbank and bf16 AST figures)")
    parser.add_argument("--clips", type=int, default=8, help="distinct 10 s media files to decode")
    parser.add_argument("--ast-batch", type=int, default=None, help="AST batch (default: 2 on CPU, 64 on CUDA)")
    parser.add_argument("--ast-steps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--cache-rows", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    import torch

    results = {
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "media").mkdir()
        paths = _write_clips(tmp / "media", args.clips)
        results |= bench_decode_and_filterbank(paths, args.device)
        results |= bench_end_to_end(paths, args.workers, tmp / "e2e")
        results |= bench_cache_read(tmp / "cache", args.cache_rows)
    results |= bench_ast_forward("cpu", args.ast_batch or 2, args.ast_steps)
    if args.device.startswith("cuda"):
        gpu = bench_ast_forward(args.device, args.ast_batch or 64, max(args.ast_steps, 10))
        results |= {f"gpu_{key}": value for key, value in gpu.items()}

    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value:,.2f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
