"""``avlabel compare``: how much two label dictionaries agree (the backend x metric ablation, Table 2)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="compare")
@click.argument("first", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("second", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--top", default=10, show_default=True, type=click.IntRange(min=0), help="How many most-different labels to list."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def compare(first: Path, second: Path, top: int, as_json: bool) -> None:
    """Report the agreement of dictionaries FIRST and SECOND: the mean per-video-label Jaccard
    overlap of their audio sets, and the video labels whose audio sets differ most."""
    import json
    import statistics

    from avlabel.savld import compare_savld, load_savld

    a, b = load_savld(first), load_savld(second)
    overlaps = compare_savld(a, b)
    values = [jaccard for _, jaccard in overlaps]
    # Stable sort keeps class order among equal overlaps, so the listing is reproducible.
    worst = sorted(range(len(overlaps)), key=lambda i: values[i])[:top]
    summary = {
        "first": str(first),
        "second": str(second),
        "video_labels": len(values),
        "mean_jaccard": statistics.fmean(values),
        "median_jaccard": statistics.median(values),
        "identical_rows": sum(value == 1.0 for value in values),
        "most_different": [
            {
                "video_label": overlaps[i][0],
                "jaccard": values[i],
                "only_first": [
                    label
                    for label, _ in a.audio_labels(overlaps[i][0])
                    if label not in dict(b.audio_labels(overlaps[i][0]))
                ],
                "only_second": [
                    label
                    for label, _ in b.audio_labels(overlaps[i][0])
                    if label not in dict(a.audio_labels(overlaps[i][0]))
                ],
            }
            for i in worst
        ],
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    _print(summary, a, b)


def _print(summary: dict, a, b) -> None:
    from rich.table import Table

    from avlabel._console import out_console

    console = out_console()

    def setting(d) -> str:
        return f"{d.provenance.get('backend', '?')} {d.provenance.get('model', '')}, {d.metric}, k={d.k}"

    console.print(f"A: {summary['first']} ({setting(a)})")
    console.print(f"B: {summary['second']} ({setting(b)})")
    console.print(
        f"mean Jaccard {summary['mean_jaccard']:.3f} · median {summary['median_jaccard']:.3f} · "
        f"identical rows {summary['identical_rows']} of {summary['video_labels']}"
    )
    if not summary["most_different"]:
        return
    table = Table(title="video labels that differ most")
    table.add_column("video label")
    table.add_column("Jaccard", justify="right")
    table.add_column("only in A")
    table.add_column("only in B")
    for row in summary["most_different"]:
        table.add_row(
            row["video_label"], f"{row['jaccard']:.2f}", "; ".join(row["only_first"]), "; ".join(row["only_second"])
        )
    console.print(table)
