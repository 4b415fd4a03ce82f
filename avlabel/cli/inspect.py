"""``avlabel inspect``: read one row (or one reverse column) of a label dictionary.

Without ``--savld`` it reads the prebuilt Kinetics-400 x AudioSet dictionary shipped with avlabel
(bundled MiniLM, k=10, cosine; see `avlabel.savld.default_savld_path`), so it needs no model
and answers in a fraction of a second. It imports only click, numpy and rich.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="inspect")
@click.argument("label", required=False)
@click.option(
    "--savld",
    "savld_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Dictionary to read (.json or .txt). [default: shipped kinetics400 x audioset, MiniLM, k=10, cosine]",
)
@click.option(
    "--audio",
    "audio_label",
    default=None,
    metavar="LABEL",
    help="Reverse look-up: the video labels whose clusters contain this audio label.",
)
def inspect(label: str | None, savld_path: Path | None, audio_label: str | None) -> None:
    """Show the audio labels of video LABEL and which other video labels share each.

    A word that is not itself a label ("dancing") lists every video label containing it.
    """
    from avlabel.errors import AvlabelError
    from avlabel.savld import default_savld_path, load_savld

    if (label is None) == (audio_label is None):
        raise AvlabelError(
            "give a video label (avlabel inspect dancing) or an audio label (avlabel inspect --audio Music), not both"
        )
    path = savld_path or default_savld_path()
    dictionary = load_savld(path)
    source = _describe(dictionary, path)
    if audio_label is not None:
        _print_reverse(dictionary, audio_label, source)
        return
    try:
        _print_row(dictionary, dictionary.video.labels[dictionary.video.index(label)], source)
    except AvlabelError:
        matches = _labels_containing(dictionary.video.labels, label)
        if not matches:
            raise
        _print_matches(dictionary, label, matches, source)


def _describe(dictionary, path: Path) -> str:
    provenance = dictionary.provenance
    return f"{path.name} · {provenance.get('backend', '?')} {provenance.get('model', '')} · {dictionary.metric}, k={dictionary.k}"


def _labels_containing(labels: tuple[str, ...], text: str) -> list[str]:
    key = " ".join(text.casefold().split())
    return [label for label in labels if key and key in label.casefold()] if len(key) >= 3 else []


def _score(value: float) -> str:
    return f"{value:.3f}"


def _print_row(dictionary, video_label: str, source: str) -> None:
    from rich.table import Table

    from avlabel._console import out_console

    kind = "similarity" if dictionary.higher_is_closer else "distance"
    table = Table(title=f"{video_label} → {dictionary.audio.name}", caption=source)
    table.add_column("#", justify="right")
    table.add_column("audio label")
    table.add_column(kind, justify="right")
    table.add_column("shared with (other video labels)")
    for rank, (audio, score) in enumerate(dictionary.audio_labels(video_label), start=1):
        others = [video for video, _ in dictionary.video_labels(audio) if video != video_label]
        shared = f"{len(others)}: " + ", ".join(others[:4]) + (", …" if len(others) > 4 else "") if others else "–"
        table.add_row(str(rank), audio, _score(score), shared)
    out_console().print(table)


def _print_reverse(dictionary, audio_label: str, source: str) -> None:
    from rich.table import Table

    from avlabel._console import out_console

    audio = dictionary.audio.labels[dictionary.audio.index(audio_label)]
    rows = dictionary.video_labels(audio)
    if not rows:
        out_console().print(f"'{audio}' is in no {dictionary.video.name} label's top {dictionary.k} ({source})")
        return
    kind = "similarity" if dictionary.higher_is_closer else "distance"
    table = Table(title=f"{dictionary.video.name} labels whose top {dictionary.k} contain '{audio}'", caption=source)
    table.add_column("video label")
    table.add_column("rank there", justify="right")
    table.add_column(kind, justify="right")
    for video, score in rows:
        rank = [name for name, _ in dictionary.audio_labels(video)].index(audio) + 1
        table.add_row(video, str(rank), _score(score))
    out_console().print(table)


def _print_matches(dictionary, query: str, matches: list[str], source: str) -> None:
    from rich.table import Table

    from avlabel._console import out_console

    table = Table(
        title=f"'{query}' is not a {dictionary.video.name} label; {len(matches)} labels contain it",
        caption=source,
    )
    table.add_column("video label")
    table.add_column(f"top audio labels (of {dictionary.k})")
    for video in matches:
        table.add_row(
            video, "; ".join(f"{audio} {_score(score)}" for audio, score in dictionary.audio_labels(video)[:5])
        )
    out_console().print(table)
