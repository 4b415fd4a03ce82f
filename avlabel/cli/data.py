"""``avlabel data``: dataset manifests from the layouts people have on disk."""

from __future__ import annotations

import click


@click.group(name="data")
def data() -> None:
    """Build and check dataset manifests (CSV: video_id,path,label,split,start,end)."""


@data.command(name="manifest")
@click.option(
    "--format",
    "format",
    required=True,
    type=click.Choice(["kinetics", "ucf101", "hmdb51", "folders"]),
    help="Layout of the dataset under --root.",
)
@click.option(
    "--root", required=True, type=click.Path(file_okay=False), help="Dataset folder (videos and split files)."
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Manifest CSV to write.")
@click.option(
    "--split-index", default=1, show_default=True, type=click.IntRange(1, 3), help="Official split (ucf101, hmdb51)."
)
@click.option(
    "--annotations",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Kinetics annotation CSV(s); default: *.csv in ROOT/annotations or ROOT.",
)
@click.option("--label-set", default=None, help="Check every label against this label set (name or file).")
def manifest(format, root, output, split_index, annotations, label_set) -> None:
    """Write a manifest for a Kinetics, UCF-101, HMDB51 or folder-per-class dataset.

    Videos the annotations list but the disk lacks are counted and written to
    OUTPUT.missing.txt; they do not stop the run.
    """
    from collections import Counter

    from avlabel._checks import check_output_file
    from avlabel._console import err_console, out_console
    from avlabel._io import atomic_write_text
    from avlabel.data.adapters import build_records
    from avlabel.data.manifest import write_manifest
    from avlabel.errors import AvlabelError

    output = check_output_file(output, "-o")
    options = {
        "kinetics": {"annotations": list(annotations) or None},
        "ucf101": {"split_index": split_index},
        "hmdb51": {"split_index": split_index},
        "folders": {},
    }[format]
    result = build_records(format, root, **options)
    if not result.records:
        raise AvlabelError(f"none of the videos the {format} annotations list were found under {root}; check --root")
    if label_set is not None:
        from avlabel.labels import load_label_set

        vocabulary = load_label_set(label_set)
        unknown = sorted({record.label for record in result.records if record.label not in vocabulary})
        if unknown:
            vocabulary.index(unknown[0])  # raises with "did you mean" suggestions
    write_manifest(result.records, output)
    missing_path = output.with_name(output.name + ".missing.txt")
    if result.missing:
        atomic_write_text(missing_path, "split\tlabel\tvideo\n" + "\n".join(result.missing) + "\n")

    console = err_console()
    splits = Counter(record.split for record in result.records)
    classes = len({record.label for record in result.records})
    console.print(
        f"{len(result.records)} clips, {classes} classes, splits: "
        + ", ".join(f"{name} {count}" for name, count in splits.items()),
        highlight=False,
    )
    if result.missing:
        console.print(f"[yellow]{len(result.missing)} listed videos are missing on disk; see {missing_path}[/]")
    for reason, count in result.skipped.items():
        console.print(f"skipped {count} rows: {reason}", highlight=False)
    out_console().print(str(output), highlight=False, soft_wrap=True)
