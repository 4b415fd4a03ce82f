"""``avlabel tag FILE``: the top AudioSet labels the frozen AST hears in one file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from avlabel.cli._application import Application, pass_app

# Shared with `avlabel targets`: the same checkpoint argument everywhere AST runs.
ast_option = click.option(
    "--ast",
    "ast_source",
    default=None,
    metavar="ID|DIR",
    help="AST checkpoint: a Hugging Face hub id or a local directory (without internet: a local directory). "
    "[default: MIT/ast-finetuned-audioset-10-10-0.4593]",
)


@click.command(name="tag")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1), help="How many labels to print.")
@ast_option
@click.option(
    "--start",
    type=click.FloatRange(min=0),
    default=None,
    help="Clip start in seconds (default: the start of the audio).",
)
@click.option(
    "--end",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Clip end in seconds (default: the end of the audio).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_app
def tag(
    app: Application,
    file: Path,
    top: int,
    ast_source: str | None,
    start: float | None,
    end: float | None,
    as_json: bool,
) -> None:
    """Print the top AudioSet labels of FILE (a video or audio file).

    The centred 10 s window of the clip (or of the whole file) is decoded to 16 kHz mono and
    tagged by the frozen AST, exactly as `avlabel targets` does for every manifest item.
    """
    from avlabel._checks import check_input_file
    from avlabel._console import err_console, out_console
    from avlabel.audio.ast import DEFAULT_AST, AstTagger, tag_file
    from avlabel.data.decode import open_container
    from avlabel.errors import AvlabelError

    # The input is checked before AST loads (seconds to minutes): a typo fails at once.
    check_input_file(file, "media file", "pass a video or audio file")
    if start is not None and end is not None and end <= start:
        raise AvlabelError(f"--end {end} is not after --start {start}; pass a clip that ends after it starts")
    open_container(file).close()  # unreadable or not media: one line now, not after loading the model
    device = app.resolve_device()
    with err_console().status(f"loading AST ({ast_source or DEFAULT_AST}) on {device}"):
        tagger = AstTagger.from_pretrained(ast_source or DEFAULT_AST, device=device)
    status, top_labels = tag_file(tagger, file, top, start, end)
    mids = _audioset_ids(tagger.labels)
    rows = [
        {
            "rank": rank,
            "label": tagger.labels[index],
            "mid": mids[index] if mids else None,
            "probability": round(prob, 4),
        }
        for rank, (index, prob) in enumerate(top_labels, start=1)
    ]
    if as_json:
        click.echo(
            json.dumps({"file": str(file), "status": status.name.lower(), "labels": rows}, indent=2, ensure_ascii=False)
        )
        return
    if not rows:
        click.echo(f"{file}: no audio to tag ({status.name.lower().replace('_', ' ')})")
        return
    from rich.table import Table

    table = Table(title=f"{file.name}: top {len(rows)} AudioSet labels")
    for column, justify in (("#", "right"), ("label", "left"), ("MID", "left"), ("probability", "right")):
        table.add_column(column, justify=justify)
    for row in rows:
        table.add_row(str(row["rank"]), row["label"], row["mid"] or "–", f"{row['probability']:.3f}")
    out_console().print(table)


def _audioset_ids(labels: tuple[str, ...]) -> tuple[str, ...] | None:
    """AudioSet MIDs in the checkpoint's order, when its labels are the AudioSet ontology's."""
    from avlabel.audio.ast import check_label_order
    from avlabel.errors import AvlabelError
    from avlabel.labels import load_label_set

    audioset = load_label_set("audioset")
    try:
        check_label_order(labels, audioset, source="checkpoint")
    except AvlabelError:
        return None
    return audioset.ids
