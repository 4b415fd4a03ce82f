"""``avlabel report``: a markdown table comparing training runs (the shape of the paper's Tables 3-5)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Which `avlabel eval` split to read.")
@click.option(
    "--checkpoint",
    default="best",
    show_default=True,
    help="Which evaluated checkpoint to read (best, last or a file name).",
)
@click.option("--group", is_flag=True, help="Merge runs that differ only in their seed into mean ± std rows.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the table here (and its rows as .json beside it).",
)
def report(run_dirs: tuple[Path, ...], split: str, checkpoint: str, group: bool, output: Path | None) -> None:
    """Compare RUN_DIRS: fusion, modalities, k–Y_a, alpha, M/W, augmentation -> top-1/top-5/drop rate.

    Numbers come from `avlabel eval` results (RUN_DIR/eval/SPLIT-CHECKPOINT/metrics.json); runs
    never evaluated show their best validation epoch instead, marked in the Source column.
    """
    from avlabel.evaluate.report import write_report

    table = write_report(run_dirs, output=output, split=split, checkpoint=checkpoint, group=group)
    click.echo(table, nl=False)
    if output is not None:
        from avlabel._console import err_console

        err_console().print(f"wrote {output} and {output.with_suffix('.json')}")
