"""``avlabel predict``: the top classes of one video, with the relevance network's verdict on its audio."""

from __future__ import annotations

import json
from pathlib import Path

import click

from avlabel.cli._application import Application, pass_app
from avlabel.cli._options import checkpoint_option, run_option, views_option


@click.command(name="predict")
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@run_option
@checkpoint_option
@views_option
@click.option(
    "--audio",
    "audio_dir",
    type=click.Path(path_type=Path),
    help="Audio cache whose embedder (AST) to use; default: the run's.",
)
@click.option(
    "--ast", type=str, default=None, help="AST checkpoint (hub id or directory) when it moved since `avlabel targets`."
)
@click.option(
    "--flow",
    "flow_dir",
    type=click.Path(path_type=Path),
    help="Flow folder holding this video (default: computed now).",
)
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="How many classes to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def predict(
    app: Application,
    video: Path,
    run: Path,
    checkpoint: str,
    views: str,
    audio_dir: Path | None,
    ast: str | None,
    flow_dir: Path | None,
    top: int,
    as_json: bool,
) -> None:
    """Classify VIDEO with a trained run: top classes, relevance score, whether the audio was dropped.

    With an AST-based run, the AudioSet tags AST hears in the clip are listed too.
    """
    from avlabel._console import out_console
    from avlabel.evaluate.multiview import ViewGrid
    from avlabel.evaluate.prediction import predict_video

    result = predict_video(
        video,
        run,
        checkpoint=checkpoint,
        views=ViewGrid.parse(views),
        audio_dir=audio_dir,
        flow_dir=flow_dir,
        ast=ast,
        device=app.resolve_device(),
        top=top,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    out_console().print(_table(result))
    for line in _audio_lines(result):
        out_console().print(line)


def _table(result: dict):
    from rich.table import Table

    table = Table(title=f"{result['video']} ({result['views']} views)")
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("probability", justify="right")
    for rank, (name, probability) in enumerate(result["top"], start=1):
        table.add_row(str(rank), name, f"{probability:.3f}")
    return table


def _audio_lines(result: dict) -> list[str]:
    """Plain lines describing what happened to the audio."""
    lines = []
    if result["audio_status"] is not None:
        lines.append(f"audio windows: {result['audio_status']}")
    if result["relevance"] is not None:
        verdict = (
            "kept"
            if result["audio_kept"] == 1.0
            else "dropped"
            if result["audio_kept"] == 0.0
            else (f"kept in {100 * result['audio_kept']:.0f}% of the views")
        )
        threshold = f" (alpha {result['alpha']:g})" if result["alpha"] is not None else ""
        lines.append(f"relevance score {result['relevance']:.3f}{threshold}: audio {verdict}")
    elif result["audio_status"] is not None and result["audio_kept"] is None:
        lines.append("no audible audio: the model used vision only")
    if result["audio_tags"]:
        lines.append("AudioSet tags: " + ", ".join(f"{name} {p:.2f}" for name, p in result["audio_tags"]))
    return lines
