"""``avlabel flow``: extract optical flow for every video of a manifest (resumable)."""

from __future__ import annotations

import os

import click

from avlabel._sharding import usable_cpus
from avlabel.cli._application import Application, pass_app
from avlabel.cli._options import shard_option, warn_failed_option


@click.command(name="flow")
@click.option("--manifest", "manifest_path", required=True, type=click.Path(dir_okay=False), help="Manifest CSV.")
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="Flow folder (created; reruns resume)."
)
@click.option(
    "--method",
    type=click.Choice(["dis", "farneback", "tvl1", "tvl1-torch"]),
    default="dis",
    show_default=True,
    help="OpenCV estimator (tvl1 needs opencv-contrib-python-headless), or avlabel's batched PyTorch TV-L1 "
    "(on the global --device, default CUDA when available).",
)
@click.option(
    "--preset",
    type=click.Choice(["ultrafast", "fast", "medium"]),
    default="medium",
    show_default=True,
    help="Quality preset of dis and tvl1-torch (ignored by the other methods).",
)
@click.option(
    "--short-side", default=256, show_default=True, help="Scale frames down to this short side first (pixels)."
)
@click.option(
    "--format",
    "format",
    type=click.Choice(["jpg", "npz"]),
    default="jpg",
    show_default=True,
    help="jpg: x_/y_NNNNN.jpg per video (mmaction2 denseflow layout); npz: lossless, one file per video.",
)
@click.option(
    "--workers",
    default=lambda: usable_cpus(),
    show_default="the CPUs this process may use",
    type=click.IntRange(min=0),
    help="Processes, one video each (0 or 1: compute in this process).",
)
@shard_option
@warn_failed_option
@pass_app
def flow(
    app: Application, manifest_path, out, method, preset, short_side, format, workers, shard, warn_failed_share
) -> None:
    """Compute optical flow (clipped to +-20 px, uint8) between consecutive frames of every video.

    Finished videos are skipped on a rerun, so an interrupted run resumes; videos that cannot be
    decoded are skipped, counted and listed in OUT/flow_errors.log. A run in which every video
    fails is an error. With --shard (or under a Slurm array or torchrun) the run computes one
    shard of the videos; the shards of a split run at the same time into the same OUT.
    """
    from avlabel._checks import check_output_dir
    from avlabel._console import err_console, out_console
    from avlabel._progress import progress_bar
    from avlabel._shard_folder import merge_status
    from avlabel._sharding import detect_shard, torchrun_local_rank
    from avlabel.data.flow_extract import FlowConfig, run_flow
    from avlabel.data.flow_format import ERRORS_NAME
    from avlabel.data.manifest import read_manifest

    shard = detect_shard(shard)
    # Missing files are not fatal here: like corrupt ones they are skipped and listed.
    manifest = read_manifest(manifest_path, check_files=False)
    config = FlowConfig(method=method, preset=preset, short_side=short_side, format=format)
    device = None
    if method == "tvl1-torch":
        device = app.resolve_device(local_rank=torchrun_local_rank())  # one GPU per torchrun process
    check_output_dir(out, "--out")
    with progress_bar("flow") as progress:
        summary = run_flow(
            manifest,
            out,
            config,
            workers=workers,
            progress=progress,
            warn_failed_share=warn_failed_share,
            device=device,
            shard=shard,
        )
    rate = summary.flow_frames / summary.seconds if summary.seconds > 0 else 0.0
    console = err_console()
    console.print(
        ("" if shard.whole else f"{shard.describe()}: ")
        + f"{summary.computed} videos computed ({summary.flow_frames} frame pairs, {rate:.0f} pairs/s), "
        f"{summary.skipped} already done, {len(summary.failed)} failed"
    )
    if not shard.whole:
        console.print(merge_status(shard, summary.waiting, out), highlight=False)
    if summary.failed:
        console.print(f"[yellow]{len(summary.failed)} videos failed; listed in {os.path.join(out, ERRORS_NAME)}[/]")
        for video_id, error in summary.failed[:3]:
            console.print(f"  {video_id}: {error}", highlight=False)
    out_console().print(out, highlight=False, soft_wrap=True)
