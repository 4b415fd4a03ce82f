"""Model speed: imd_b against timesformer_b in one run (training/inference clips/s, memory, MFU).

Run from the repository root::

    python benchmarks/bench_models.py                # GPU preset when CUDA is visible, else CPU
    python benchmarks/bench_models.py --json out.json

A thin preset over ``avlabel bench`` (:mod:`avlabel.bench`, where the measurement is
documented). GPU preset: the paper's input (8 x 224², batch 32, bf16 autocast, fused SGD,
``torch.compile``), the setting of the issue's targets (imd_b >= 50% MFU and >= 1.7x
TimeSformer-B training clips/s per visual stream). CPU preset: batch 1 at 8 x 224², three timed
steps after one warm-up — enough to compare the two designs, far too slow to train on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    import torch

    from avlabel.bench.throughput import run_benchmarks

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    on_gpu = args.device.startswith("cuda")
    if on_gpu:
        preset = {"batch": 32, "steps": 20, "warmup": 5, "compile": True}
    else:
        preset = {"batch": 1, "steps": 3, "warmup": 1, "compile": False}
    report = run_benchmarks(["imd_b", "timesformer_b"], device=args.device, **preset)
    print(
        f"{report['environment']['name']} ({args.device}), measured {report['peak_matmul_precision']} matmul peak "
        f"{report['peak_matmul_tflops']:.2f} TFLOP/s"
    )
    for r in report["results"]:
        print(
            f"{r['model']:>14}: {r['frames']}x{r['size']}² batch {r['batch']}: train {r['train_clips_per_s']:.3g} clips/s "
            f"({r['train_stream_clips_per_s']:.3g} per visual stream), MFU {100 * r['mfu']:.1f}%, "
            f"peak {r['train_peak_memory_mib'] or 0:.0f} MiB, inference {r['inference_clips_per_s']:.3g} clips/s"
        )
    for pair, ratio in report["ratios"].items():
        print(
            f"{pair}: training x{ratio['train_clips_per_s']:.2f}, per visual stream x{ratio['train_stream_clips_per_s']:.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
