"""Compare training runs in one markdown table shaped like the paper's Tables 3-5.

Each row is a run directory: its settings come from ``config.yaml`` (fusion head, modalities,
``k``-``Y_a`` of the relevance targets, alpha and M/W of IMD, the intra-class augmentation
probability) and its numbers from the evaluation ``avlabel eval`` wrote into
``RUN_DIR/eval/{split}-{checkpoint}/metrics.json`` (multi-view test accuracy and the fraction of
audio dropped). A run that was never evaluated falls back to its best validation record in
``metrics.jsonl`` (single view), and the table says so in its Source column, so numbers from
different protocols are never passed off as comparable.

With ``group=True`` runs that differ only in their seed are merged into one row showing
mean ± standard deviation (sample std, ``ddof=1``) and the number of runs.

Settings that do not apply to a run are shown as "–": alpha and M/W only exist for the ``imd``
head, ``k``-``Y_a`` only when the relevance network is trained (IMD), fusion and augmentation
only when audio is fused with vision.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avlabel._checks import check_output_file
from avlabel._io import atomic_write_json, atomic_write_text
from avlabel.errors import AvlabelError, reading

# Setting columns in table order; the values identify a configuration (seed excluded).
SETTING_COLUMNS = ("Model", "Fusion", "Modalities", "k–Y_a", "α", "M/W", "Aug. p")
METRIC_COLUMNS = ("Top-1 (%)", "Top-5 (%)", "Mean class (%)", "Drop (%)")
_METRIC_KEYS = ("top1", "top5", "mean_class_accuracy", "drop_rate")
_NOT_APPLICABLE = "–"


@dataclass
class RunSummary:
    """One run's settings and headline numbers (fractions in [0, 1], None when unknown)."""

    run_dir: Path
    settings: dict[str, str]  # SETTING_COLUMNS -> display value
    seed: int | None
    metrics: dict[str, float | None]  # top1, top5, mean_class_accuracy, drop_rate
    source: str  # "test 3x4 (best)" or "val 1 view (epoch 7)"
    names: list[str] = field(default_factory=list)  # run directory names (several when grouped)


def eval_dir(run_dir: str | os.PathLike[str], split: str, checkpoint: str) -> Path:
    """Where ``avlabel eval`` writes by default: ``RUN_DIR/eval/{split}-{checkpoint name}``."""
    tag = checkpoint if checkpoint in ("best", "last") else Path(checkpoint).name.split(".")[0]
    return Path(run_dir) / "eval" / f"{split}-{tag}"


def _read_config(run_dir: Path) -> dict[str, Any]:
    from avlabel.train.config import read_yaml_mapping, upgrade_layout

    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise AvlabelError(
            f"{run_dir} is not a run directory (no config.yaml); pass directories written by `avlabel train`"
        )
    config = read_yaml_mapping(config_path)
    for section, value in config.items():
        if not isinstance(value, dict):
            raise AvlabelError(
                f"{config_path}: section {section!r} must be a mapping, got {type(value).__name__}; repair the file"
            )
    try:
        return upgrade_layout(config)  # runs of earlier versions kept alpha and mode in the imd section
    except AvlabelError as error:
        raise AvlabelError(f"{config_path}: {error}") from None


def _settings(config: dict[str, Any]) -> dict[str, str]:
    """Display values of `SETTING_COLUMNS` from a run's ``config.yaml``."""
    model, audio, imd = config.get("model", {}), config.get("audio", {}), config.get("imd", {})
    modalities = list(model.get("modalities", []))
    has_audio = "audio" in modalities
    fused = has_audio and any(m in modalities for m in ("rgb", "flow"))
    fusion = model.get("fusion", "") if fused else _NOT_APPLICABLE
    is_imd = fusion == "imd"
    return {
        "Model": str(model.get("name", "")),
        "Fusion": fusion,
        "Modalities": "+".join(m for m in ("rgb", "flow", "audio") if m in modalities),
        "k–Y_a": f"{audio.get('k')}–{audio.get('ya')}" if is_imd else _NOT_APPLICABLE,
        "α": f"{model.get('imd_alpha'):g}" if is_imd else _NOT_APPLICABLE,
        "M/W": str(model.get("imd_mode")) if is_imd else _NOT_APPLICABLE,
        "Aug. p": f"{imd.get('augment_p', 0.0):g}" if fused else _NOT_APPLICABLE,
    }


def _best_val_record(run_dir: Path) -> dict[str, Any] | None:
    """The validation record with the highest top-1 in ``metrics.jsonl`` (None if there is none)."""
    from avlabel.train.runlog import read_metrics

    best = None
    for record in read_metrics(run_dir):
        is_val = record.get("kind") == "val" and record.get("top1") is not None
        if is_val and (best is None or record["top1"] > best["top1"]):
            best = record
    return best


def summarize_run(run_dir: str | os.PathLike[str], split: str = "test", checkpoint: str = "best") -> RunSummary:
    """Settings and numbers of one run (evaluation JSON first, best validation record otherwise).

    Raises:
        AvlabelError: ``run_dir`` has no ``config.yaml`` or an unreadable evaluation file.
    """
    run_dir = Path(run_dir)
    config = _read_config(run_dir)
    metrics: dict[str, float | None] = dict.fromkeys(_METRIC_KEYS)
    evaluation_path = eval_dir(run_dir, split, checkpoint) / "metrics.json"
    if evaluation_path.is_file():
        with reading(f"evaluation {evaluation_path}", f"rerun `avlabel eval --run {run_dir}`"):
            evaluation = json.loads(evaluation_path.read_text(encoding="utf-8"))
        for key in ("top1", "top5", "mean_class_accuracy"):
            metrics[key] = evaluation.get(key)
        metrics["drop_rate"] = (evaluation.get("relevance") or {}).get("drop_rate")
        source = f"{split} {evaluation.get('views', '?')} ({checkpoint})"
    elif (record := _best_val_record(run_dir)) is not None:
        for key in ("top1", "top5", "drop_rate"):
            metrics[key] = record.get(key)
        source = f"val 1 view (epoch {record.get('epoch', '?')})"
    else:
        source = "not evaluated"
    seed = config.get("runtime", {}).get("seed")
    return RunSummary(run_dir, _settings(config), seed, metrics, source, names=[run_dir.name])


def group_runs(summaries: Sequence[RunSummary]) -> list[tuple[RunSummary, dict[str, tuple[float, float, int]]]]:
    """Merge runs with equal settings and source protocol; per metric ``(mean, std, n)``.

    Runs keep their first-seen order. ``std`` is the sample standard deviation (0 for n = 1).
    """
    groups: dict[tuple, list[RunSummary]] = {}
    for summary in summaries:
        protocol = summary.source.split(" (")[0]  # "test 3x4" / "val 1 view": never mix the two
        groups.setdefault((tuple(summary.settings.values()), protocol), []).append(summary)
    merged = []
    for members in groups.values():
        stats = {}
        for key in _METRIC_KEYS:
            values = [m.metrics[key] for m in members if m.metrics[key] is not None]
            if values:
                mean = sum(values) / len(values)
                var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
                stats[key] = (mean, math.sqrt(var), len(values))
        first = members[0]
        seeds = sorted({m.seed for m in members if m.seed is not None})
        representative = RunSummary(
            run_dir=first.run_dir,
            settings=first.settings,
            seed=None,
            metrics={},
            source=first.source.split(" (")[0] + (f" (seeds {','.join(map(str, seeds))})" if seeds else ""),
            names=[n for m in members for n in m.names],
        )
        merged.append((representative, stats))
    return merged


def _percent(value: float | None) -> str:
    return _NOT_APPLICABLE if value is None else f"{100 * value:.1f}"


def markdown_table(summaries: Sequence[RunSummary], group: bool = False) -> str:
    """The comparison table as GitHub-flavoured markdown (percentages with one decimal)."""
    if group:
        header = ["Runs", *SETTING_COLUMNS, *METRIC_COLUMNS, "n", "Source"]
        rows = []
        for summary, stats in group_runs(summaries):
            cells = []
            for key in _METRIC_KEYS:
                if key not in stats:
                    cells.append(_NOT_APPLICABLE)
                    continue
                mean, std, n = stats[key]
                cells.append(f"{100 * mean:.1f} ± {100 * std:.1f}" if n > 1 else f"{100 * mean:.1f}")
            n_runs = len(summary.names)
            rows.append([", ".join(summary.names), *summary.settings.values(), *cells, str(n_runs), summary.source])
    else:
        header = ["Run", *SETTING_COLUMNS, *METRIC_COLUMNS, "Source"]
        rows = [
            [s.names[0], *s.settings.values(), *(_percent(s.metrics[k]) for k in _METRIC_KEYS), s.source]
            for s in summaries
        ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _check_evaluation_found(run_dirs: Sequence[str | os.PathLike[str]], split: str, checkpoint: str) -> None:
    """Refuse a split/checkpoint no run was evaluated on while the runs have other evaluations.

    Runs never evaluated fall back to their validation record on purpose; a mistyped ``--split``
    on evaluated runs would fall back silently too and print validation numbers as if asked for.
    """
    if any((eval_dir(run_dir, split, checkpoint) / "metrics.json").is_file() for run_dir in run_dirs):
        return
    found = sorted({path.parent.name for run_dir in run_dirs for path in Path(run_dir).glob("eval/*/metrics.json")})
    if found:
        raise AvlabelError(
            f"--split {split} --checkpoint {checkpoint}: no run has `avlabel eval` results for it "
            f"(they have {', '.join(found)}); pass those, or run `avlabel eval --split {split}` first"
        )


def write_report(
    run_dirs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str] | None = None,
    split: str = "test",
    checkpoint: str = "best",
    group: bool = False,
) -> str:
    """Summarise ``run_dirs`` and return the markdown table; with ``output`` also write it there
    (atomically) plus the same rows as JSON next to it (``.json`` suffix)."""
    if not run_dirs:
        raise AvlabelError("no run directories given; pass one or more directories written by `avlabel train`")
    if output is not None:
        output = check_output_file(output, "-o")
        if output.suffix == ".json":
            raise AvlabelError(
                f"-o {output}: the rows go to a .json file beside the table; name the table {output.with_suffix('.md')}"
            )
        check_output_file(output.with_suffix(".json"), "-o (its .json rows)")
    summaries = [summarize_run(run_dir, split, checkpoint) for run_dir in run_dirs]
    _check_evaluation_found(run_dirs, split, checkpoint)
    table = markdown_table(summaries, group=group)
    if output is not None:
        atomic_write_text(output, table)
        rows = [
            {"run_dir": str(s.run_dir), "seed": s.seed, "source": s.source, **s.settings, **s.metrics}
            for s in summaries
        ]
        document: dict[str, Any] = {"split": split, "checkpoint": checkpoint, "runs": rows}
        if group:
            document["groups"] = [
                {
                    "runs": g.names,
                    "source": g.source,
                    **g.settings,
                    **{key: {"mean": mean, "std": std, "n": n} for key, (mean, std, n) in stats.items()},
                }
                for g, stats in group_runs(summaries)
            ]
        atomic_write_json(output.with_suffix(".json"), document)
    return table
