"""``avlabel eval``: multi-view test accuracy and relevance-network behaviour of a trained run."""

from __future__ import annotations

from pathlib import Path

import click

from avlabel.cli._application import Application, pass_app
from avlabel.cli._options import checkpoint_option, run_option, views_option


@click.command(name="eval")
@run_option
@checkpoint_option
@click.option(
    "--manifest", required=True, type=click.Path(path_type=Path), help="Manifest CSV holding the clips to evaluate."
)
@click.option("--split", default="test", show_default=True, help="Manifest split to evaluate.")
@views_option
@click.option(
    "--audio",
    "audio_dir",
    type=click.Path(path_type=Path),
    help="Audio cache (`avlabel targets -o DIR`); default: the run's.",
)
@click.option(
    "--flow", "flow_dir", type=click.Path(path_type=Path), help="Flow folder (`avlabel flow`); default: the run's."
)
@click.option(
    "--tags",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Tags CSV with a `relevant` column; default: audio_tags.csv beside the manifest, if any.",
)
@click.option(
    "--target-threshold",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Relevance targets at or above this count as relevant (default: the model's alpha).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Views per forward pass.")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Data-loading worker processes (0: load in this process).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory [default: RUN_DIR/eval/SPLIT-CHECKPOINT].",
)
@pass_app
def eval_command(
    app: Application,
    run: Path,
    checkpoint: str,
    manifest: Path,
    split: str,
    views: str,
    audio_dir: Path | None,
    flow_dir: Path | None,
    tags: Path | None,
    target_threshold: float | None,
    batch_size: int,
    workers: int,
    output: Path | None,
) -> None:
    """Evaluate a run on a manifest split: top-1/top-5, class accuracy, confusion matrix, relevance.

    Each video's softmax is averaged over its views (3 crops x 4 clips, as in the paper).
    Writes metrics.json, predictions.csv, confusion.png and skipped.tsv (videos that could not be
    decoded) and prints a summary table.
    """
    from avlabel._console import err_console, out_console
    from avlabel.evaluate.evaluation import evaluate_run
    from avlabel.evaluate.multiview import ViewGrid

    metrics = evaluate_run(
        run,
        manifest,
        split=split,
        checkpoint=checkpoint,
        views=ViewGrid.parse(views),
        output_dir=output,
        audio_dir=audio_dir,
        flow_dir=flow_dir,
        tags=tags,
        target_threshold=target_threshold,
        device=app.resolve_device(),
        batch_size=batch_size,
        workers=workers,
    )
    out_console().print(summary_table(metrics))
    if metrics["skipped_videos"]:
        err_console().print(f"[yellow]{len(metrics['skipped_videos'])} video(s) could not be decoded and were skipped")
    err_console().print(f"wrote metrics.json, predictions.csv, confusion.png to {metrics['output_dir']}")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def summary_table(metrics: dict):
    """A short rich table of the headline numbers of an evaluation."""
    from rich.table import Table

    model = metrics["model"]
    table = Table(
        title=f"{model['name']} ({'+'.join(model['modalities'])}, {model['fusion'] or 'no fusion'}) "
        f"on {metrics['split']}, {metrics['views']} views",
        show_header=False,
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("videos evaluated", f"{metrics['evaluated']} / {metrics['videos']}")
    table.add_row("top-1", _percent(metrics["top1"]))
    table.add_row("top-5", _percent(metrics["top5"]))
    table.add_row("mean class accuracy", _percent(metrics["mean_class_accuracy"]))
    relevance = metrics.get("relevance")
    if relevance:
        table.add_row(f"relevance: mean score (alpha {relevance['alpha']:g})", f"{relevance['mean_score']:.3f}")
        table.add_row("audio dropped", _percent(relevance["drop_rate"]))
        for key, name in (("vs_targets", "targets"), ("vs_relevant", "true relevance")):
            if relevance.get(key):
                agreement = relevance[key]
                auc = "–" if agreement["roc_auc"] is None else f"{agreement['roc_auc']:.3f}"
                table.add_row(
                    f"vs {name}: ROC-AUC / precision / recall",
                    f"{auc} / {_percent(agreement['precision'])} / {_percent(agreement['recall'])}",
                )
    return table
