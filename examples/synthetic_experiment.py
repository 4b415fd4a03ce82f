"""Reproduce the paper's comparisons on the synthetic benchmark, from nothing, through the CLI.

The paper's modality ablation (Table 3), its IMD ablations (Table 4: alpha, masking M vs
weighting W) and its fusion comparison (Table 5), plus random audio dropout (DropPathway) as the
baseline that asks whether *learned* dropout beats *random* dropout, are rerun on the default
``avlabel synth`` benchmark (8 classes x 100 clips; labels describe what is seen, half the clips
carry their class's sound, 35% another class's, 15% a background), on the CPU, over several
seeds. Every step is the ``avlabel`` command a user would type (run as subprocesses), so the
numbers come from the shipped tool and nothing else:

    python examples/synthetic_experiment.py --out runs/synthetic --jobs 2           # 5 seeds, every variant
    python examples/synthetic_experiment.py --out runs/synthetic-quick --quick      # 1 seed, 4 variants

Seed ``s`` generates its own benchmark (``avlabel synth --seed s``) and trains every variant on
it with ``runtime.seed=s``, so variants are compared on the same data within a seed and the
spread over seeds covers both the data draw and the initialisation. Each run is evaluated on the
test split with 3 x 4 views (``avlabel eval``), and ``OUT/results.md`` reports, per variant, the
mean ± sample std over seeds of test top-1/top-5, the share of audible audio dropped at test
time, the relevance network's ROC-AUC against the benchmark's ground-truth ``relevant`` flag, and
top-1 split by the kind of sound in the clip (own / other class / background), which is where
fusion methods differ. A second table shows what the relevance network does with each kind of
sound. ``OUT/table_runs.md`` is ``avlabel report`` over every run.

Reruns skip finished work (evaluated runs, built data), so the script can be interrupted and
restarted; an interrupted training run is resumed with ``avlabel train --resume``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

# One small model and schedule for every variant, sized for a shared 2-core CPU: imd_tiny with
# depth 2 and width 32 on 4 frames of 32x32, 16 epochs of 30 steps of 16 clips. The relevance
# loss weight (IMD only; the paper gives none) is the one avlabel uses for tiny models trained
# from scratch (examples/synthetic.yaml); the "IMD, lambda = 1" row measures the paper's weight.
# Gradients are clipped at norm 1 (ViViT's and MBT's max_grad_norm): without it, AdamW at lr 2e-3
# left some fused runs at their starting plateau for all 16 epochs (docs/experiment.md, "Runs
# that never learned").
BASE_CONFIG = """\
data:
  manifest: {data}/manifest.csv
  label_set: {data}/classes.txt
  flow_dir: {data}/flow
  frames: 4
  stride: 8
  size: 32
  workers: 0
audio:
  cache: {data}/audio
  savld: {data}/savld.json
  k: 10
  ya: 20
model:
  name: imd_tiny
  pretrained: null
  depth: 2
  embed_dim: 32
  num_heads: 2
  audio_hidden_dim: 32
  space_time_blocks: 1
imd:
  relevance_weight: 0.1
optim:
  name: adamw
  lr: 0.002
  weight_decay: 0.01
  global_batch: 16
  micro_batch: 16
  warmup_steps: 20
  grad_clip: 1.0
schedule:
  epochs: {epochs}
  log_every: 10
  checkpoint_every: 100
runtime:
  device: cpu
  seed: {seed}
"""


@dataclass(frozen=True)
class Variant:
    """One row of the results: which of the paper's tables it belongs to and its `--set` overrides."""

    label: str
    table: str
    overrides: tuple[str, ...]


# Baseline heads train without the relevance loss and without the intra-class augmentation
# (paper section 4.3, Table 5's footnote); "imd_aug" is the paper's IMD* (section 3.6), and the
# Table-4 ablations vary alpha and M/W on that full model. Multimodal rows of Table 3 use IMD.
_NO_AUG = "imd.augment_p=0"
_IMD_AUG = ("model.fusion=imd", "imd.augment_p=0.5")
VARIANTS: dict[str, Variant] = {
    "rgb": Variant("RGB", "3", ("model.modalities=[rgb]",)),
    "flow": Variant("flow", "3", ("model.modalities=[flow]",)),
    "visual": Variant("RGB + flow (vision only)", "3", ("model.modalities=[rgb,flow]",)),
    "audio": Variant("audio", "3", ("model.modalities=[audio]", _NO_AUG)),
    "imd_rgb": Variant("RGB + audio, IMD", "3", ("model.modalities=[rgb,audio]", "model.fusion=imd", _NO_AUG)),
    "imd_flow": Variant("flow + audio, IMD", "3", ("model.modalities=[flow,audio]", "model.fusion=imd", _NO_AUG)),
    "late_concat": Variant("late concat", "5", ("model.fusion=late_concat", _NO_AUG)),
    "se_gate": Variant("SE gate", "5", ("model.fusion=se_gate", _NO_AUG)),
    "nl_gate": Variant("NL gate", "5", ("model.fusion=nl_gate", _NO_AUG)),
    "gmu": Variant("GMU", "5", ("model.fusion=gmu", _NO_AUG)),
    "avc": Variant("AVC", "5", ("model.fusion=avc", _NO_AUG)),
    # Not in the paper: learned vs random dropout. p = 0.5 (ModelConfig.drop_pathway_p) is the share of
    # this benchmark's clips whose audio is not their own class's, the rate a perfect relevance network drops.
    "drop_pathway": Variant("random audio dropout, p = 0.5", "–", ("model.fusion=drop_pathway", _NO_AUG)),
    "imd": Variant("IMD", "5", ("model.fusion=imd", _NO_AUG)),
    "imd_aug": Variant("IMD* (intra-class aug.)", "4, 5", _IMD_AUG),
    "imd_aug_a0.5": Variant("IMD*, α = 0.5", "4", (*_IMD_AUG, "model.imd_alpha=0.5")),
    "imd_aug_a0.75": Variant("IMD*, α = 0.75", "4", (*_IMD_AUG, "model.imd_alpha=0.75")),
    "imd_aug_W": Variant("IMD*, weighting W", "4", (*_IMD_AUG, "model.imd_mode=W")),
    # Not in the paper: the relevance loss as strong as the class loss (avlabel's default for large models).
    "imd_lambda1": Variant("IMD, λ = 1", "–", ("model.fusion=imd", _NO_AUG, "imd.relevance_weight=1.0")),
}
QUICK = ("visual", "late_concat", "gmu", "imd")
SOUND_KINDS = ("own", "other", "background")  # avlabel synth's audio_kind of a clip
_KIND_NAMES = {"own": "own sound", "other": "other class's sound", "background": "background"}


def avlabel(*args: str, log: Path) -> None:
    """Run one avlabel command with one intra-op thread (OpenMP spin-waiting stalls tiny models
    on a shared CPU), output appended to ``log``."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("$ avlabel " + " ".join(args) + "\n")
        handle.flush()
        completed = subprocess.run(
            [sys.executable, "-m", "avlabel", *args],
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if completed.returncode:
        raise SystemExit(f"`avlabel {' '.join(args)}` failed (exit {completed.returncode}); see {log}")


def build_data(out: Path, seed: int, tokens: bool = False) -> Path:
    """Benchmark, SAVLD, flow and audio targets of one seed (skips finished steps).

    With ``tokens`` the audio cache also holds the audio time tokens AVT models read.
    """
    data = out / f"data-seed{seed}"
    log = out / "logs" / f"data-seed{seed}.log"
    if not (data / "synth.json").is_file():
        avlabel("synth", "--out", str(data), "--seed", str(seed), "--workers", "2", log=log)
    if "audio_mix" not in json.loads((data / "synth.json").read_text(encoding="utf-8"))["config"]:
        raise SystemExit(f"{data} holds a benchmark of an older `avlabel synth` (no audio mixture); choose a new --out")
    if not (data / "savld.json").is_file():
        avlabel(
            "savld",
            "--video",
            str(data / "classes.txt"),
            "--audio",
            "audioset",
            "-k",
            "10",
            "-o",
            str(data / "savld.json"),
            log=log,
        )
    # flow and targets resume on their own: rerunning them only fills what is missing.
    avlabel("flow", "--manifest", str(data / "manifest.csv"), "--out", str(data / "flow"), "--workers", "2", log=log)
    if not (data / "audio" / "targets.npz").is_file():
        # No AST weights offline: the log-mel embedder, with the benchmark's own tags as the audio labels.
        # One window per clip: a 2 s clip is shorter than AST's 10 s window, so more would be copies.
        avlabel(
            "targets",
            "--manifest",
            str(data / "manifest.csv"),
            "--savld",
            str(data / "savld.json"),
            "--tags",
            str(data / "audio_tags.csv"),
            "--embedder",
            "logmel",
            "--k",
            "10",
            "--workers",
            "2",
            *(["--tokens"] if tokens else []),
            "-o",
            str(data / "audio"),
            log=log,
        )
    return data


def run_variant(out: Path, data: Path, seed: int, name: str, variant: Variant, epochs: int, views: str) -> Path:
    """Train (or resume) and evaluate ``variant`` (named ``name``) on one seed; returns its run directory."""
    run_dir = out / "runs" / f"{name}-seed{seed}"
    log = out / "logs" / f"{name}-seed{seed}.log"
    if (run_dir / "eval" / "test-best" / "metrics.json").is_file():
        return run_dir
    config = out / "configs" / f"seed{seed}.yaml"
    overrides = [item for setting in variant.overrides for item in ("--set", setting)]
    started = time.perf_counter()
    if not _finished(run_dir, epochs):
        resume = ["--resume"] if (run_dir / "checkpoints" / "last.safetensors").is_file() else []
        avlabel("train", "--config", str(config), *overrides, "--out", str(run_dir), *resume, log=log)
    avlabel(
        "eval",
        "--run",
        str(run_dir),
        "--manifest",
        str(data / "manifest.csv"),
        "--split",
        "test",
        "--views",
        views,
        "--workers",
        "0",
        log=log,
    )
    print(f"{name} seed {seed}: done in {time.perf_counter() - started:.0f} s", flush=True)
    return run_dir


def _finished(run_dir: Path, epochs: int) -> bool:
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return False
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return any(r.get("kind") == "val" and r.get("epoch") == epochs - 1 for r in records)  # epochs count from 0


# ---- results: everything below reads only files the runs and the benchmark wrote -------------
def summarize_run(run_dir: Path, synth_json: Path) -> dict:
    """One evaluated run's numbers: fractions in [0, 1], None where they do not apply.

    ``top1``/``top5``, ``dropped`` (share of audible audio dropped at test time), ``roc_auc``
    (relevance score vs ground-truth relevance) and, for models with contrastive embeddings or a
    matching head, ``r1_``/``r5_video_to_audio`` and ``_audio_to_video`` (retrieval recall@1 and
    @5), ``matching`` (matching accuracy at 0.5) and ``matching_auc`` (its ROC-AUC, own against
    other audio) come from ``avlabel eval``'s ``metrics.json``; accuracy,
    mean relevance score and drop rate per kind of sound from its ``predictions.csv`` joined with
    the benchmark's ``synth.json``.
    """
    from avlabel.evaluate.metrics import roc_auc

    evaluation = run_dir / "eval" / "test-best"
    metrics = json.loads((evaluation / "metrics.json").read_text(encoding="utf-8"))
    kinds = {
        clip["video_id"]: clip["audio_kind"] for clip in json.loads(synth_json.read_text(encoding="utf-8"))["clips"]
    }
    with open(evaluation / "predictions.csv", newline="", encoding="utf-8") as handle:
        predictions = list(csv.DictReader(handle))
    relevance = metrics.get("relevance") or {}
    retrieval = metrics.get("retrieval") or {}
    summary = {
        "top1": metrics["top1"],
        "top5": metrics["top5"],
        "dropped": relevance.get("drop_rate"),
        "roc_auc": (relevance.get("vs_relevant") or {}).get("roc_auc"),
        "r1_video_to_audio": (retrieval.get("video_to_audio") or {}).get("r1"),
        "r1_audio_to_video": (retrieval.get("audio_to_video") or {}).get("r1"),
        "r5_video_to_audio": (retrieval.get("video_to_audio") or {}).get("r5"),
        "r5_audio_to_video": (retrieval.get("audio_to_video") or {}).get("r5"),
        "matching": (metrics.get("matching") or {}).get("accuracy"),
        "matching_auc": (metrics.get("matching") or {}).get("roc_auc"),
    }
    scores: dict[str, list[float]] = {kind: [] for kind in SOUND_KINDS}
    for kind in SOUND_KINDS:
        rows = [row for row in predictions if kinds[row["video_id"]] == kind]
        summary[f"top1_{kind}"] = statistics.mean(row["label"] == row["predicted"] for row in rows) if rows else None
        audible = [row for row in rows if row["relevance"]]  # empty: no audible audio (silence), or no IMD
        scores[kind] = [float(row["relevance"]) for row in audible]
        summary[f"rev_{kind}"] = statistics.mean(scores[kind]) if audible else None
        summary[f"dropped_{kind}"] = (
            1 - statistics.mean(float(row["audio_kept"]) for row in audible) if audible else None
        )
    for kind in ("background", "other"):  # can the network tell the own sound from this kind?
        own, other = scores["own"], scores[kind]
        summary[f"roc_auc_own_vs_{kind}"] = (
            roc_auc(own + other, [True] * len(own) + [False] * len(other)) if own and other else None
        )
    return summary


def _mean_std(values: list[float | None], scale: float = 100.0, digits: int = 1) -> str:
    values = [scale * v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "–"
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.{digits}f}{spread}"


def _settings(variant: Variant) -> dict[str, str]:
    """The setting columns of a variant, read from its overrides (defaults: rgb+flow+audio, IMD, alpha 0.25, M)."""
    values = dict(setting.split("=", 1) for setting in variant.overrides)
    modalities = values.get("model.modalities", "[rgb,flow,audio]").strip("[]").split(",")
    fused = "audio" in modalities and len(modalities) > 1
    is_imd = fused and values.get("model.fusion", "imd") == "imd"
    return {
        "Modalities": "+".join(modalities),
        "Fusion": values.get("model.fusion", "imd") if fused else "–",
        "α": values.get("model.imd_alpha", "0.25") if is_imd else "–",
        "M/W": values.get("model.imd_mode", "M") if is_imd else "–",
        "Aug. p": values.get("imd.augment_p", "0") if fused else "–",
    }


def _paired_gain(runs: list[dict], reference: list[dict]) -> list[float]:
    """Top-1 of each run minus the reference variant's top-1 on the same seed (same benchmark draw).

    Variants of one seed share the data, so their difference is free of the data draw's variance,
    which dominates the spread of each variant's own top-1 over seeds.
    """
    by_seed = {run["seed"]: run["top1"] for run in reference if "seed" in run}
    return [run["top1"] - by_seed[run["seed"]] for run in runs if run.get("seed") in by_seed]


# Columns of models with contrastive embeddings or a matching head (AVT), shown when a run has
# them: header, scale, decimals (percentages, or a ROC-AUC as it is).
_CORRESPONDENCE = {
    "r1_video_to_audio": ("R@1 video→audio", 100.0, 1),
    "r1_audio_to_video": ("R@1 audio→video", 100.0, 1),
    "r5_video_to_audio": ("R@5 video→audio", 100.0, 1),
    "r5_audio_to_video": ("R@5 audio→video", 100.0, 1),
    "matching": ("Matching accuracy", 100.0, 1),
    "matching_auc": ("Matching ROC-AUC", 1.0, 2),
}


def results_tables(summaries: dict[str, list[dict]], variants: dict[str, Variant] | None = None) -> str:
    """The two markdown tables of ``results.md`` (mean ± sample std over the seeds of each variant).

    Args:
        summaries: variant name -> `summarize_run` of each seed's run (with its ``seed``).
        variants: the variants by name (default: `VARIANTS`).
    """
    variants = variants or VARIANTS
    correspondence = [
        key for key in _CORRESPONDENCE if any(r.get(key) is not None for rs in summaries.values() for r in rs)
    ]
    main_header = [
        "Variant",
        "Table",
        "Modalities",
        "Fusion",
        "α",
        "M/W",
        "Aug. p",
        "Top-1",
        "Top-1 − vision only, paired",
        "Top-5",
        "Audio dropped",
        "Relevance ROC-AUC",
        *(f"Top-1, {_KIND_NAMES[kind]}" for kind in SOUND_KINDS),
        *(_CORRESPONDENCE[key][0] for key in correspondence),
    ]
    lines = ["| " + " | ".join(main_header) + " |", "|" + "---|" * len(main_header)]
    for name, runs in summaries.items():
        variant = variants[name]
        gain = _paired_gain(runs, summaries.get("visual", [])) if name != "visual" else []
        cells = [
            variant.label,
            variant.table,
            *_settings(variant).values(),
            _mean_std([r["top1"] for r in runs]),
            _mean_std(gain),
            _mean_std([r["top5"] for r in runs]),
            _mean_std([r["dropped"] for r in runs]),
            _mean_std([r["roc_auc"] for r in runs], scale=1.0, digits=2),
            *(_mean_std([r[f"top1_{kind}"] for r in runs]) for kind in SOUND_KINDS),
            *(_mean_std([r.get(key) for r in runs], *_CORRESPONDENCE[key][1:]) for key in correspondence),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    relevance_header = [
        "Variant",
        *(f"mean rev, {_KIND_NAMES[kind]}" for kind in SOUND_KINDS),
        *(f"dropped, {_KIND_NAMES[kind]}" for kind in SOUND_KINDS),
        "ROC-AUC own vs background",
        "ROC-AUC own vs other class's",
    ]
    relevance = ["| " + " | ".join(relevance_header) + " |", "|" + "---|" * len(relevance_header)]
    for name, runs in summaries.items():
        if all(r["rev_own"] is None and r["dropped_own"] is None for r in runs):
            continue  # no relevance network and no test-time dropping (unimodal, baselines)
        cells = [
            variants[name].label,
            *(_mean_std([r[f"rev_{kind}"] for r in runs], 1.0, 2) for kind in SOUND_KINDS),
            *(_mean_std([r[f"dropped_{kind}"] for r in runs]) for kind in SOUND_KINDS),
            _mean_std([r["roc_auc_own_vs_background"] for r in runs], 1.0, 2),
            _mean_std([r["roc_auc_own_vs_other"] for r in runs], 1.0, 2),
        ]
        relevance.append("| " + " | ".join(cells) + " |")
    retrieval_note = (
        " Retrieval recall@1 and @5 (of the contrastive embeddings, among the test clips with audio) and matching "
        "accuracy (each clip's own audio and another clip's, at 0.5) in %; matching ROC-AUC: own against other audio."
        if correspondence
        else ""
    )
    return (
        "Test top-1 / top-5 and audio dropped in %, relevance ROC-AUC against the ground-truth `relevant` flag; "
        'mean ± sample std over seeds. "Top-1 − vision only, paired" is, per seed, the variant\'s top-1 minus the '
        "vision-only model's on the same benchmark draw." + retrieval_note + "\n\n" + "\n".join(lines) + "\n\n"
        "What the relevance network does with each kind of sound (test clips with audible audio; "
        "mean relevance score, % of the audio dropped):\n\n" + "\n".join(relevance) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic"), help="experiment folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--views", default="3x4", help="test views, crops x clips")
    parser.add_argument("--jobs", type=int, default=2, help="training runs in parallel (one CPU thread each)")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="run only these variants")
    parser.add_argument("--quick", action="store_true", help=f"seed 0 and {', '.join(QUICK)} only (a few minutes)")
    args = parser.parse_args()

    seeds = [args.seeds[0]] if args.quick else args.seeds
    names = list(QUICK) if args.quick else (args.only or list(VARIANTS))
    variants = {name: VARIANTS[name] for name in names}
    print(run_experiment(args.out, seeds, variants, args.epochs, args.views, args.jobs, "Synthetic experiment"))


def run_experiment(
    out: Path,
    seeds: list[int],
    variants: dict[str, Variant],
    epochs: int,
    views: str,
    jobs: int,
    title: str,
    tokens: bool = False,
) -> str:
    """Build each seed's data, train and evaluate every variant on it, write and return ``OUT/results.md``.

    Args:
        tokens: the audio caches also hold audio time tokens (for AVT variants).
    """
    started = time.perf_counter()
    out = out.resolve()
    for folder in ("logs", "configs", "runs"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    data = {}
    for seed in seeds:
        data[seed] = build_data(out, seed, tokens=tokens)
        (out / "configs" / f"seed{seed}.yaml").write_text(BASE_CONFIG.format(data=data[seed], epochs=epochs, seed=seed))
    work = [(seed, name) for seed in seeds for name in variants]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        run_dirs = list(
            pool.map(lambda job: run_variant(out, data[job[0]], job[0], job[1], variants[job[1]], epochs, views), work)
        )
    avlabel("report", *map(str, run_dirs), "-o", str(out / "table_runs.md"), log=out / "logs" / "report.log")

    summaries: dict[str, list[dict]] = {}
    for (seed, name), run_dir in zip(work, run_dirs, strict=True):
        summaries.setdefault(name, []).append({"seed": seed, **summarize_run(run_dir, data[seed] / "synth.json")})
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    results = (
        f"# {title}: {len(seeds)} seed(s) ({' '.join(map(str, seeds))}), {epochs} epochs, "
        f"test views {views}\n\n{results_tables(summaries, variants)}\n"
        f"This invocation: {(time.perf_counter() - started) / 60:.1f} min wall, "
        f"{(children.ru_utime + children.ru_stime) / 60:.1f} min CPU in avlabel processes "
        f"({jobs} job(s) at a time; finished work from earlier invocations is not counted).\n"
    )
    (out / "results.md").write_text(results, encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
