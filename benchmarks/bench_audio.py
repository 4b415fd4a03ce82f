"""Audio pipeline throughput: where the time of `avlabel targets` goes, and how fast training reads the cache.

Measures, on synthetic but real media files (10 s clips, H.264 video + 44.1 kHz stereo AAC, like
Kinetics):

1. decode + resample (PyAV / libswresample) per clip, one CPU worker, and the resampling alone;
2. the AST filterbank per clip: the batched torch implementation and transformers'
   ASTFeatureExtractor, one CPU thread, and the torch one on the GPU when there is one (plus the
   pinned host-to-GPU copy of the waveforms);
3. AST-base forward (random weights from ``ASTConfig()``: the same compute as the AudioSet
   checkpoint) in clips/s, on the CPU and, with CUDA, in bf16, without and with its time
   tokens, and the tokens' valid length + energy per clip;
4. the end-to-end cache fill (decode workers + filterbank + embedder + commits) with the logmel
   embedder, which isolates the pipeline's own overhead from the model, without and with tokens;
5. cache reads: random training batches (rows/s) through ``AudioCache.read``, and random token
   rows (AST-base's 101 x 768 float16) through ``AudioCache.read_tokens``, from the page cache and
   after evicting the token file from it (``posix_fadvise``: what a first epoch over a cache
   larger than memory sees on this disk);
5b. the merge of a split's shard caches into one (``avlabel targets --shard``): rows/s and MB/s
   of appending every shard's rows in manifest order, with and without tokens;
6. the two AVT masks (``random_token_mask``, ``segment_mask``) on a training batch;
7. reference points of the token energy (`avlabel.audio.tokens`): silence, white noise and a
   tone at known levels, and the sounds of the synthetic benchmark (5 draws of each at its
   loudness range), which is what the default activity threshold of ``segment_mask`` is set by.

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
    num_frames = torch.full((batch,), 998, device=device)

    def forward(tokens: bool = False):
        tagger.embed(features, num_frames, tokens=tokens)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def token_extras():  # what extraction adds per window next to the tokens themselves
        tagger.token_grid.valid_length(num_frames)
        tagger.token_grid.energy(features, num_frames, tagger.filterbank.config)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    seconds = _best_of(forward, steps)
    # CPU time of all threads (robust on a shared machine), with and without tokens interleaved so
    # that a change of load affects both alike.
    forward(tokens=True)
    plain, with_tokens = [], []
    for _ in range(steps):
        for tokens, times in ((False, plain), (True, with_tokens)):
            start = time.process_time()
            forward(tokens=tokens)
            times.append(time.process_time() - start)
    core_seconds, token_core_seconds = statistics.median(plain), statistics.median(with_tokens)
    return {
        "ast_forward_core_seconds_per_clip": core_seconds / batch,
        "ast_forward_with_tokens_core_seconds_per_clip": token_core_seconds / batch,
        "ast_token_overhead_percent": 100 * (token_core_seconds / core_seconds - 1),
        "ast_forward_spread_percent": 100 * (max(plain) - min(plain)) / core_seconds,
        "token_length_and_energy_cpu_ms_per_clip": 1e3 * _token_extras_cpu_seconds(token_extras) / batch,
        "ast_device": device,
        "ast_dtype": "bf16 autocast" if device.startswith("cuda") else "fp32",
        "ast_batch": batch,
        "ast_forward_clips_per_s": batch / seconds,
        "ast_params_millions": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def _token_extras_cpu_seconds(function) -> float:
    """CPU seconds of ``function`` on one thread (on a busy machine, more threads mostly spin-wait)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _best_of(function, 5, time.process_time)
    finally:
        torch.set_num_threads(threads)


def bench_end_to_end(paths: list[Path], workers: int, directory: Path) -> dict:
    from avlabel.audio.embedders import build_embedder
    from avlabel.audio.extract import extract_audio
    from avlabel.data.manifest import ClipRecord

    # The clips repeat under new ids so the run is long enough for the workers to matter.
    records = [ClipRecord(f"v{i:05d}", paths[i % len(paths)], "x", "train") for i in range(8 * len(paths))]
    results = {"end_to_end_workers": workers}
    for tokens in (False, True):
        summary = extract_audio(
            records,
            directory / f"tokens-{tokens}",
            build_embedder("logmel"),
            workers=workers,
            batch_size=16,
            progress=False,
            tokens=tokens,
        )
        results[f"end_to_end_logmel{'_tokens' if tokens else ''}_clips_per_s"] = summary.items_per_second
    return results


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


def bench_token_cache(directory: Path, rows: int, count: int = 101, dim: int = 768, batch: int = 64) -> dict:
    """Write an AST-base-sized token cache, then read random training batches of token rows."""
    from avlabel.audio.cache import TOKENS, AudioCache, AudioCacheWriter, TokenRows

    rng = np.random.default_rng(0)
    windows = {"count": 1, "seconds": 10.0, "sample_rate": 16_000}
    grid = {"patch": 16, "stride": 10, "max_length": 1024, "count": count, "dim": dim, "silence_energy": -1.28}
    chunk = 256
    tokens = rng.standard_normal((chunk, count, dim)).astype(np.float16)
    energy = rng.standard_normal((chunk, count)).astype(np.float32)
    start = time.perf_counter()
    with AudioCacheWriter(directory, {"name": "bench"}, dim, None, windows, grid) as writer:
        embedding, status, length = np.zeros((1, dim), np.float16), np.zeros(1, np.uint8), np.full(1, 100, np.uint16)
        for row in range(rows):
            k = row % chunk
            writer.append(
                f"v{row:07d}", embedding, None, status, TokenRows(tokens[k : k + 1], length, energy[k : k + 1])
            )
            if k == chunk - 1:
                writer.commit()
    write_seconds = time.perf_counter() - start
    row_bytes = count * dim * 2 + 2 + count * 4
    cache = AudioCache(directory)
    batches = [rng.integers(0, rows, batch) for _ in range(50)]

    def read_all():
        for rows_of_batch in batches:
            cache.read_tokens(rows_of_batch)

    read_all()  # warm: the rows of these batches are in the page cache now
    warm = _best_of(read_all, 3)
    single = batches[0].tolist()
    one_row = _best_of(lambda: [cache.read_tokens([row]) for row in single], 3) / len(single)  # as an item reads
    fd = os.open(directory / TOKENS, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # evict this file's pages (others' stay)
    os.close(fd)
    start = time.perf_counter()
    read_all()
    cold = time.perf_counter() - start
    return {
        "token_cache_rows": rows,
        "token_cache_gb": rows * row_bytes / 1e9,
        "token_cache_write_mb_per_s": rows * row_bytes / 1e6 / write_seconds,
        "token_read_batch": batch,
        "token_read_warm_rows_per_s": len(batches) * batch / warm,
        "token_read_one_row_per_call_rows_per_s": 1 / one_row,
        "token_read_cold_rows_per_s": len(batches) * batch / cold,
        "token_read_cold_mb_per_s": len(batches) * batch * row_bytes / 1e6 / cold,
    }


def bench_shard_merge(directory: Path, rows: int, shards: int = 4, tokens: bool = False, dim: int = 768) -> dict:
    """Fill ``shards`` shard caches with ``rows`` rows in all, then time their merge into one cache (fsync included)."""
    from avlabel._sharding import Shard
    from avlabel.audio.cache import AudioCache, AudioCacheWriter, TokenRows
    from avlabel.audio.pipeline import merge_shard_caches

    rng = np.random.default_rng(0)
    windows = {"count": 1, "seconds": 10.0, "sample_rate": 16_000}
    grid = {"patch": 16, "stride": 10, "max_length": 1024, "count": 101, "dim": dim, "silence_energy": -1.28}
    ids = [f"v{row:07d}" for row in range(rows)]
    embedding, probs = rng.standard_normal((1, dim)).astype(np.float16), rng.random((1, 527)).astype(np.float16)
    status = np.zeros(1, np.uint8)
    token_rows = TokenRows(
        rng.standard_normal((1, 101, dim)).astype(np.float16),
        np.full(1, 100, np.uint16),
        np.zeros((1, 101), np.float32),
    )
    split = []
    for index in range(shards):
        folder = directory / ".audio_shards" / f"{index}-of-{shards}"
        shard = Shard(index, shards)
        with AudioCacheWriter(
            folder, {"name": "bench"}, dim, [f"label {i}" for i in range(527)], windows, grid if tokens else None
        ) as writer:
            for video_id in ids:
                if shard.holds(video_id):
                    writer.append(video_id, embedding, probs, status, token_rows if tokens else None)
        split.append(folder)
    start = time.perf_counter()
    merge_shard_caches(directory / "merged", split, ids)
    seconds = time.perf_counter() - start
    size = sum(path.stat().st_size for path in (directory / "merged").iterdir())
    assert len(AudioCache(directory / "merged")) == rows
    name = "shard_merge" + ("_tokens" if tokens else "")
    return {f"{name}_rows": rows, f"{name}_rows_per_s": rows / seconds, f"{name}_mb_per_s": size / 1e6 / seconds}


def bench_masks(batch: int = 64, count: int = 101, repeats: int = 20) -> dict:
    import torch

    from avlabel.audio.masking import random_token_mask, segment_mask

    generator = torch.Generator().manual_seed(0)
    valid = torch.arange(count)[None, :] < torch.randint(20, count + 1, (batch, 1), generator=generator)
    energy = torch.randn(batch, count, generator=generator)
    random_seconds = _best_of(lambda: random_token_mask(valid, 0.75, generator), repeats)
    segment_seconds = _best_of(lambda: segment_mask(valid, energy, 0.5, 5, generator), repeats)
    return {
        "mask_batch": batch,
        "random_token_mask_ms_per_batch": 1e3 * random_seconds,
        "segment_mask_ms_per_batch": 1e3 * segment_seconds,
    }


def token_energy_reference(draws: int = 5) -> dict:
    """Mean token energy of 10 s of reference signals, and percentiles over the synthetic benchmark's sounds."""

    from avlabel.audio.features import AstFilterbank
    from avlabel.audio.masking import DEFAULT_MIN_ENERGY
    from avlabel.audio.tokens import TokenGrid
    from avlabel.data.synth.sounds import SOUNDS, render_sound

    filterbank, grid = AstFilterbank(), TokenGrid()
    seconds = np.arange(160_000) / 16_000
    rng = np.random.default_rng(0)
    signals = {"silence": np.zeros(160_000)}
    for level in (-70, -50, -30):
        signals[f"white_noise_{-level}dbfs"] = 10 ** (level / 20) * rng.standard_normal(160_000)
    for level in (-60, -40, -20):
        signals[f"tone_440hz_{-level}dbfs"] = 10 ** (level / 20) * np.sqrt(2) * np.sin(2 * np.pi * 440 * seconds)

    def energy(waveforms: list[np.ndarray]) -> np.ndarray:  # (n, valid tokens) of full 10 s windows
        features, num_frames = filterbank(np.stack(waveforms).astype(np.float32), [160_000] * len(waveforms))
        return grid.energy(features, num_frames, filterbank.config)[:, : int(grid.valid_length(num_frames)[0])].numpy()

    results = {f"energy_{name}": float(energy([wave]).mean()) for name, wave in signals.items()}
    sounds = [name for name in SOUNDS if name != "silence"]
    synthetic = np.stack(
        [
            energy([render_sound(name, rng, 160_000, 16_000, rng.uniform(0.3, 0.8)) for _ in range(draws)])
            for name in sounds
        ]
    )  # (sounds, draws, tokens)
    results["energy_synthetic_p10"], results["energy_synthetic_p90"] = np.percentile(synthetic, [10, 90]).tolist()
    quiet = (synthetic <= DEFAULT_MIN_ENERGY).mean(axis=(1, 2))
    results["synthetic_tokens_at_or_below_min_energy"] = (
        ", ".join(f"{name} {share:.1%}" for name, share in zip(sounds, quiet, strict=True) if share > 0) or "none"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (adds GPU filterbank and bf16 AST figures)")
    parser.add_argument("--clips", type=int, default=8, help="distinct 10 s media files to decode")
    parser.add_argument("--ast-batch", type=int, default=None, help="AST batch (default: 2 on CPU, 64 on CUDA)")
    parser.add_argument("--ast-steps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--cache-rows", type=int, default=100_000)
    parser.add_argument("--token-rows", type=int, default=20_000, help="rows of the token cache (155 kB each)")
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
        results |= bench_token_cache(tmp / "token-cache", args.token_rows)
        results |= bench_shard_merge(tmp / "merge", args.cache_rows // 2)
        results |= bench_shard_merge(tmp / "merge-tokens", args.token_rows // 4, tokens=True)
    results |= bench_masks()
    results |= token_energy_reference()
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
