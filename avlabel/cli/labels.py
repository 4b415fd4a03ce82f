"""``avlabel labels``: the shipped label vocabularies, or the labels of one set."""

from __future__ import annotations

import click


@click.command(name="labels")
@click.argument("name", required=False)
def labels(name: str | None) -> None:
    """List the shipped label sets and their sizes, or print set NAME's labels.

    NAME may also be a label file (.txt, .csv, .json). Labels print as INDEX<TAB>LABEL
    (plus <TAB>ID when the set has ids, e.g. AudioSet MIDs), one per line, for grep and cut.
    """
    from avlabel.labels import list_label_sets, load_label_set

    if name is None:
        from rich.table import Table

        from avlabel._console import out_console

        table = Table(title="shipped label sets")
        table.add_column("name")
        table.add_column("classes", justify="right")
        for set_name, size in list_label_sets().items():
            table.add_row(set_name, str(size))
        out_console().print(table)
        return
    label_set = load_label_set(name)
    ids = label_set.ids or [None] * len(label_set)
    click.echo(
        "\n".join(f"{i}\t{label}" + (f"\t{mid}" if mid else "") for i, (label, mid) in enumerate(zip(label_set, ids)))
    )
