"""``avlabel targets``: audio cache + relevance targets + report for a manifest (section 4.2.3)."""

from __future__ import annotations

from pathlib import Path

import click

from avlabel._sharding import usable_cpus
from avlabel.cli._application import Application, pass_app
from avlabel.cli._options import shard_option, warn_failed_option
from avlabel.cli.tag import ast_option


@click.command(name="targets")
@click.option(
    "--manifest", "manifest", required=True, type=click.Path(path_type=Path), help="Manifest CSV of the dataset."
)
@click.option(
    "--savld",
    "savld",
    required=True,
    type=click.Path(path_type=Path),
    help="SAVLD file (.json or .txt) from `avlabel savld`.",
)
@ast_option
@click.option(
    "--tags",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV video_id,audio_labels[,relevant] whose ';'-joined AudioSet labels replace the AST predictions.",
)
@click.option(
    "--embedder",
    type=click.Choice(["ast", "logmel"]),
    default="ast",
    show_default=True,
    help="Audio embedding stored in the cache; logmel (weak baseline, no AST weights needed) requires --tags.",
)
@click.option(
    "--ya", default=20, show_default=True, type=click.IntRange(min=1), help="Y_a: top AST labels per audio window."
)
@click.option(
    "--k", "k", default=None, type=click.IntRange(min=1), help="SAVLD labels per class (default: all the SAVLD holds)."
)
@click.option(
    "--overlap",
    type=click.Choice(["iou", "dice"]),
    default="iou",
    show_default=True,
    help="Overlap between the two label sets.",
)
@click.option(
    "--normalize",
    type=click.Choice(["max", "none"]),
    default="max",
    show_default=True,
    help="Divide the overlap by its largest reachable value (k != Y_a caps it below 1), or keep it as is.",
)
@click.option(
    "--windows",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Audio windows per video (multi-clip testing).",
)
@click.option(
    "--workers",
    default=lambda: min(8, usable_cpus()),
    show_default="min(8, the CPUs this process may use)",
    type=click.IntRange(min=0),
    help="Decoding worker processes (0: decode in the main process).",
)
@click.option(
    "--tokens/--no-tokens",
    default=None,
    help="Also cache the audio time tokens AVT models read (155 kB per window with AST-base; IMD never reads "
    "them). Default: as the cache in OUTPUT already does; none for a new cache.",
)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="Videos per model batch.")
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="Output directory (reusing it resumes)."
)
@shard_option
@click.option(
    "--merge",
    is_flag=True,
    help="Compute nothing: merge the finished shards in OUTPUT into its cache and write the targets and report "
    "(the last shard to finish does this itself); refused while shards are missing, naming them.",
)
@warn_failed_option
@pass_app
def targets(
    app: Application,
    manifest: Path,
    savld: Path,
    ast_source: str | None,
    tags: Path | None,
    embedder: str,
    ya: int,
    k: int | None,
    overlap: str,
    normalize: str,
    windows: int,
    workers: int,
    tokens: bool | None,
    batch_size: int,
    output: Path,
    shard: str | None,
    merge: bool,
    warn_failed_share: float,
) -> None:
    """Cache audio embeddings/AudioSet probabilities and write relevance targets.

    For each manifest clip and its class, target = overlap(top-Y_a audio labels, the class's k
    SAVLD labels), IoU or Dice, by default divided by its largest reachable value (--normalize);
    clips without audio get 0. Writes the cache (with --tokens also the time tokens of every
    window), targets.npz/json/csv, report.json and PNG plots to OUTPUT. Interrupted runs resume;
    a run in which no video can be read is an error. With --shard (or under a Slurm array or
    torchrun) the run caches one shard of the videos; the last shard of the split to finish merges
    them into OUTPUT and writes the targets and report (--merge does that step alone).
    """
    from avlabel._checks import check_output_dir
    from avlabel._console import err_console, out_console
    from avlabel._shard_folder import merge_status
    from avlabel._sharding import WHOLE, detect_shard, torchrun_local_rank
    from avlabel.audio.pipeline import make_targets

    # A merge step belongs to no shard: only an explicit --shard (refused with --merge) counts.
    shard = detect_shard(shard) if not merge or shard is not None else WHOLE
    check_output_dir(output, "-o")
    run = make_targets(
        manifest,
        savld,
        output,
        ast=ast_source,
        tags=tags,
        embedder=embedder,
        ya=ya,
        k=k,
        overlap=overlap,
        normalize=normalize,
        num_windows=windows,
        workers=workers,
        batch_size=batch_size,
        device="cpu" if merge else app.resolve_device(local_rank=torchrun_local_rank()),  # one GPU per torchrun process
        warn_failed_share=warn_failed_share,
        tokens=tokens,
        shard=shard,
        merge=merge,
    )
    if not shard.whole:
        summary = run.extraction
        err_console().print(
            f"{shard.describe()}: {summary.items} videos ({summary.cached} cached, {summary.computed} computed, "
            f"{len(summary.bad)} unreadable)",
            highlight=False,
        )
        err_console().print(merge_status(shard, run.waiting, output), highlight=False)
    if run.report is None:
        return
    report = run.report
    extraction = report["extraction"]
    console = out_console()
    console.print(
        f"audio: {extraction['videos']} videos ({extraction['already_cached']} cached, {extraction['computed']} computed, "
        f"{extraction['bad_items']} unreadable{' — see audio_bad_items.tsv' if extraction['bad_items'] else ''})"
        + (", with audio tokens" if report["settings"]["tokens"] else "")
    )
    kept = ", ".join(f"α={alpha}: {fraction:.1%}" for alpha, fraction in report["fraction_at_least"].items())
    console.print(f"targets: {report['rows']} windows, mean {report['mean_target']:.3f}; at or above {kept}")
    per_class = report["per_class"]
    if per_class:
        console.print(
            "most audio-relevant classes: "
            + ", ".join(f"{c['label']} ({c['mean_relevance']:.2f})" for c in per_class[:5])
        )
        console.print(
            "least audio-relevant classes: "
            + ", ".join(f"{c['label']} ({c['mean_relevance']:.2f})" for c in per_class[-5:])
        )
    console.print(f"wrote {output}/ (report.json, target_histogram.png, class_relevance.png, targets.csv, targets.npz)")
