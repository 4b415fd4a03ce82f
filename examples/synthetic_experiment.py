"""Reproduce the synthetic experiment from nothing: synth -> SAVLD -> flow -> targets -> train -> eval -> report.

The paper's fusion comparison (Table 5), its modality ablation (Table 3, visual vs audio) and
its IMD ablations (Table 4: alpha, masking M vs weighting W) are rerun at toy scale on the
synthetic audio-visual benchmark (``avlabel synth``), on the CPU, over several seeds. Every
step is the ``avlabel`` command a user would type (run as subprocesses), so the numbers come
from the shipped tool and nothing else:

    python examples/synthetic_experiment.py --out runs/synthetic --seeds 0 1 2 --jobs 2

Seed ``s`` generates its own benchmark (``avlabel synth --seed s``) and trains every variant on
it with ``runtime.seed=s``, so variants are compared on the same data within a seed and the
spread over seeds covers both the data draw and the initialisation. Each variant is evaluated
on the test split with multi-view testing and the runs are summarised by ``avlabel report
--group`` (mean ± sample std over seeds) into ``OUT/results.md``, followed by the relevance
network's agreement with the benchmark's ground-truth relevance for the IMD variants.

Reruns skip finished work (evaluated runs, built data), so the script can be interrupted and
restarted; an interrupted training run is resumed with ``avlabel train --resume``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Benchmark size: 8 classes x 40 clips (24 train / 8 val / 8 test per class), 2 s at 64 px.
SYNTH = ["--classes", "8", "--per-class", "40", "--size", "64", "--duration", "2.0"]

# One small model and schedule for every variant, sized for a shared 2-core CPU.
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
  overrides: {{depth: 2, embed_dim: 32, num_heads: 2, audio_hidden_dim: 32, space_time_blocks: 1}}
optim:
  name: adamw
  lr: 0.002
  weight_decay: 0.01
  global_batch: 16
  micro_batch: 16
  warmup_steps: 20
schedule:
  epochs: {epochs}
  log_every: 10
  checkpoint_every: 100
runtime:
  device: cpu
  seed: {seed}
"""

# name -> `--set` overrides on BASE_CONFIG. Baseline heads train without the relevance loss and
# without augmentation (paper section 4.3); "imd_aug" is the paper's IMD* (section 3.6), and the
# Table-4 ablations vary alpha and M/W on that full model.
VARIANTS = {
    "visual": ["model.modalities=[rgb,flow]"],
    "audio": ["model.modalities=[audio]", "imd.augment_p=0"],
    "late_concat": ["model.fusion=late_concat", "imd.augment_p=0"],
    "gmu": ["model.fusion=gmu", "imd.augment_p=0"],
    "se_gate": ["model.fusion=se_gate", "imd.augment_p=0"],
    "nl_gate": ["model.fusion=nl_gate", "imd.augment_p=0"],
    "avc": ["model.fusion=avc", "imd.augment_p=0"],
    "imd": ["model.fusion=imd", "imd.augment_p=0"],
    "imd_aug": ["model.fusion=imd", "imd.augment_p=0.5"],
    "imd_aug_a0.5": ["model.fusion=imd", "imd.augment_p=0.5", "imd.alpha=0.5"],
    "imd_aug_a0.75": ["model.fusion=imd", "imd.augment_p=0.5", "imd.alpha=0.75"],
    "imd_aug_W": ["model.fusion=imd", "imd.augment_p=0.5", "imd.mode=W"],
}
# Follow-ups that test why IMD does or does not win here: a weaker relevance loss (lambda), and
# the flow stream alone as the visual side (it learns faster than RGB + flow at this scale).
INVESTIGATION = {
    "imd_lambda0.1": ["model.fusion=imd", "imd.augment_p=0", "imd.relevance_weight=0.1"],
    "flow": ["model.modalities=[flow]"],
    "late_concat_flow": ["model.modalities=[flow,audio]", "model.fusion=late_concat", "imd.augment_p=0"],
    "imd_flow": ["model.modalities=[flow,audio]", "model.fusion=imd", "imd.augment_p=0"],
}
ALL_VARIANTS = {**VARIANTS, **INVESTIGATION}


def avlabel(*args: str, log: Path | None = None) -> None:
    """Run one avlabel command; one intra-op thread each (OpenMP spin-waiting stalls tiny models
    on a shared CPU), output appended to ``log``."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "avlabel", *args]
    if log is None:
        subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)
        return
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("$ avlabel " + " ".join(args) + "\n")
        handle.flush()
        completed = subprocess.run(command, env=environment, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if completed.returncode:
        raise SystemExit(f"`avlabel {' '.join(args)}` failed (exit {completed.returncode}); see {log}")


def build_data(out: Path, seed: int) -> Path:
    """Benchmark, label file, SAVLD, flow and audio targets of one seed (skips finished steps)."""
    data = out / f"data-seed{seed}"
    log = out / "logs" / f"data-seed{seed}.log"
    if not (data / "manifest.csv").is_file():
        avlabel("synth", "--out", str(data), *SYNTH, "--seed", str(seed), "--workers", "2", log=log)
    if not (data / "classes.txt").is_file():  # older `avlabel synth` versions wrote no label file
        with open(data / "manifest.csv", newline="", encoding="utf-8") as handle:
            labels = sorted({row["label"] for row in csv.DictReader(handle)})
        (data / "classes.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    if not (data / "savld.json").is_file():
        avlabel("savld", "--video", str(data / "classes.txt"), "--audio", "audioset", "-k", "10",
                "-o", str(data / "savld.json"), log=log)  # fmt: skip
    # flow and targets resume on their own: rerunning them only fills what is missing.
    avlabel("flow", "--manifest", str(data / "manifest.csv"), "--out", str(data / "flow"), "--format", "npz",
            "--short-side", "64", "--workers", "2", log=log)  # fmt: skip
    if not (data / "audio" / "targets.npz").is_file():
        # No AST weights offline: the log-mel embedder, with the benchmark's own tags as the audio labels.
        avlabel("targets", "--manifest", str(data / "manifest.csv"), "--savld", str(data / "savld.json"),
                "--tags", str(data / "audio_tags.csv"), "--embedder", "logmel", "--k", "10", "--windows", "4",
                "--workers", "2", "-o", str(data / "audio"), log=log)  # fmt: skip
    return data


def run_variant(out: Path, data: Path, seed: int, name: str, epochs: int, views: str) -> Path:
    """Train (or resume) and evaluate one variant of one seed; returns its run directory."""
    run_dir = out / "runs" / f"{name}-seed{seed}"
    log = out / "logs" / f"{name}-seed{seed}.log"
    if (run_dir / "eval" / "test-best" / "metrics.json").is_file():
        return run_dir
    config = out / "configs" / f"seed{seed}.yaml"
    overrides = [item for setting in ALL_VARIANTS[name] for item in ("--set", setting)]
    started = time.perf_counter()
    if not _finished(run_dir, epochs):
        resume = ["--resume"] if (run_dir / "checkpoints" / "last.safetensors").is_file() else []
        avlabel("train", "--config", str(config), *overrides, "--out", str(run_dir), *resume, log=log)
    avlabel("eval", "--run", str(run_dir), "--manifest", str(data / "manifest.csv"), "--split", "test",
            "--views", views, "--workers", "0", log=log)  # fmt: skip
    print(f"{name} seed {seed}: done in {time.perf_counter() - started:.0f} s", flush=True)
    return run_dir


def _finished(run_dir: Path, epochs: int) -> bool:
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return False
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return any(r.get("kind") == "val" and r.get("epoch") == epochs - 1 for r in records)  # epochs count from 0


def _sound_kind(clip: dict, class_names: set[str]) -> str:
    """"own" (the clip's class sound), "other class" (misleading) or "background" (noise, hum, silence)."""
    if clip["relevant"]:
        return "own"
    return "other class" if clip["sound_source"] in class_names else "background"


def _test_clips(run_dir: Path, data: dict[int, Path]) -> tuple[dict[str, dict], list[dict]]:
    """The benchmark's clip records (by video id) and the run's test predictions."""
    seed = int(run_dir.name.rsplit("-seed", 1)[1])
    clips = {c["video_id"]: c for c in json.loads((data[seed] / "synth.json").read_text())["clips"]}
    with open(run_dir / "eval" / "test-best" / "predictions.csv", newline="", encoding="utf-8") as handle:
        return clips, list(csv.DictReader(handle))


def _mean_std(values: list[float | None], scale: float = 1.0, digits: int = 2) -> str:
    values = [scale * v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "–"
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.{digits}f}{spread}"


def relevance_table(run_dirs: list[Path], data: dict[int, Path]) -> str:
    """The relevance network of the IMD variants, mean ± std over seeds: its scores against the true
    relevance, and separately how well it tells the clip's own sound from background sounds (a
    judgement audio alone can make) and from another class's sound (one that needs vision)."""
    from avlabel.evaluate.metrics import roc_auc

    groups: dict[str, list[dict]] = {}
    for run_dir in run_dirs:
        metrics = json.loads((run_dir / "eval" / "test-best" / "metrics.json").read_text())
        if not metrics.get("relevance"):
            continue
        clips, predictions = _test_clips(run_dir, data)
        class_names = {clip["label"] for clip in clips.values()}
        scores: dict[str, list[float]] = {"own": [], "other class": [], "background": []}
        for row in predictions:
            if row["relevance"]:  # empty: no audible audio in the clip
                scores[_sound_kind(clips[row["video_id"]], class_names)].append(float(row["relevance"]))
        separation = {}
        for kind in ("background", "other class"):
            own, other = scores["own"], scores[kind]
            separation[kind] = roc_auc(own + other, [True] * len(own) + [False] * len(other))
        groups.setdefault(run_dir.name.rsplit("-seed", 1)[0], []).append({**metrics["relevance"], "separation": separation})

    header = (
        "| Variant | mean rev | audio dropped (%) | ROC-AUC vs true relevance | precision (%) | recall (%) "
        "| ROC-AUC own vs background sound | ROC-AUC own vs other class's sound |"
    )
    lines = [header, "|---" * 8 + "|"]
    for name, items in groups.items():
        truth = [item.get("vs_relevant") or {} for item in items]
        lines.append(
            f"| {name} | {_mean_std([i['mean_score'] for i in items])} | {_mean_std([i['drop_rate'] for i in items], 100, 1)} | "
            f"{_mean_std([t.get('roc_auc') for t in truth])} | {_mean_std([t.get('precision') for t in truth], 100, 1)} | "
            f"{_mean_std([t.get('recall') for t in truth], 100, 1)} | "
            f"{_mean_std([i['separation']['background'] for i in items])} | {_mean_std([i['separation']['other class'] for i in items])} |"
        )
    return "\n".join(lines) + "\n"


def accuracy_by_sound(run_dirs: list[Path], data: dict[int, Path]) -> str:
    """Test top-1 per kind of sound in the clip (own class / another class / background), mean ± std over seeds.

    This is where fusion methods differ: misleading audio (another class's sound) is what IMD is
    meant to drop, and dropping or under-using relevant audio is what it costs.
    """
    kinds = ("own", "other class", "background")
    groups: dict[str, list[dict[str, float]]] = {}
    for run_dir in run_dirs:
        clips, predictions = _test_clips(run_dir, data)
        class_names = {clip["label"] for clip in clips.values()}
        hits: dict[str, list[bool]] = {kind: [] for kind in kinds}
        for row in predictions:
            hits[_sound_kind(clips[row["video_id"]], class_names)].append(row["label"] == row["predicted"])
        groups.setdefault(run_dir.name.rsplit("-seed", 1)[0], []).append({k: statistics.mean(h) for k, h in hits.items() if h})
    lines = ["| Variant | " + " | ".join(f"top-1, {kind} sound (%)" for kind in kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for variant, seeds in groups.items():
        lines.append(f"| {variant} | " + " | ".join(_mean_std([s.get(kind) for s in seeds], 100, 1) for kind in kinds) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic"), help="experiment folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--views", default="3x4", help="test views, crops x clips")
    parser.add_argument("--jobs", type=int, default=2, help="training runs in parallel (one CPU thread each)")
    parser.add_argument("--only", nargs="+", choices=sorted(ALL_VARIANTS), help="run only these variants")
    parser.add_argument("--no-investigation", action="store_true", help="skip the follow-up variants")
    args = parser.parse_args()

    out = args.out.resolve()
    for folder in ("logs", "configs", "runs"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    names = args.only or list(VARIANTS if args.no_investigation else ALL_VARIANTS)
    data = {}
    for seed in args.seeds:
        data[seed] = build_data(out, seed)
        (out / "configs" / f"seed{seed}.yaml").write_text(BASE_CONFIG.format(data=data[seed], epochs=args.epochs, seed=seed))
    jobs = [(seed, name) for seed in args.seeds for name in names]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        run_dirs = list(pool.map(lambda job: run_variant(out, data[job[0]], job[0], job[1], args.epochs, args.views), jobs))

    report_log = out / "logs" / "report.log"
    sections = []
    for title, group in (("Paper variants", VARIANTS), ("Follow-ups", INVESTIGATION)):
        dirs = [run_dir for (seed, name), run_dir in zip(jobs, run_dirs) if name in group]
        if not dirs:
            continue
        table = out / f"table_{'main' if group is VARIANTS else 'followups'}.md"
        avlabel("report", *map(str, dirs), "--group", "-o", str(table), log=report_log)
        sections.append(f"## {title}\n\n{table.read_text()}")
    avlabel("report", *map(str, run_dirs), "-o", str(out / "table_runs.md"), log=report_log)
    results = (
        f"# Synthetic experiment ({len(args.seeds)} seeds: {' '.join(map(str, args.seeds))}; {args.epochs} epochs; "
        f"test views {args.views})\n\n" + "\n".join(sections)
        + f"\n## Relevance network (IMD variants)\n\n{relevance_table(run_dirs, data)}"
        + f"\n## Test top-1 by the sound in the clip\n\n{accuracy_by_sound(run_dirs, data)}"
    )
    (out / "results.md").write_text(results, encoding="utf-8")
    print(results)


if __name__ == "__main__":
    main()
