"""``avlabel synth``: generate the synthetic audio-visual benchmark."""

from __future__ import annotations

import os

import click


@click.command(name="synth")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write the benchmark into.")
@click.option("--classes", default=8, show_default=True, help="Number of classes (at most 12).")
@click.option("--per-class", default=40, show_default=True, help="Clips per class.")
@click.option("--relevant-fraction", default=0.5, show_default=True,
              help="Share of clips whose sound is their own class's (the rest: another class or background).")  # fmt: skip
@click.option("--seed", default=0, show_default=True, help="Random seed; the same seed gives byte-identical files.")
@click.option("--size", default=128, show_default=True, help="Frame height and width in pixels.")
@click.option("--duration", default=3.0, show_default=True, help="Clip length in seconds.")
@click.option("--fps", default=25.0, show_default=True, help="Frame rate.")
@click.option("--workers", default=min(4, os.cpu_count() or 1), show_default="min(4, CPUs)", help="Worker processes.")
@click.pass_context
def synth(ctx, out, classes, per_class, relevant_fraction, seed, size, duration, fps, workers) -> None:
    """Write a small synthetic benchmark: MP4 clips (H.264 + AAC), manifest, audio tags, synth.json.

    Classes are Kinetics-400 actions with a clear AudioSet sound; each has its own visual shape
    and motion over clutter and noise. Some clips carry their class's sound, others another
    class's sound or background noise, tagged with the AudioSet names of what is really heard.
    """
    from dataclasses import replace

    from avlabel._console import err_console, out_console
    from avlabel._progress import progress_bar
    from avlabel.data.synth import SynthConfig, generate_benchmark
    from avlabel.data.synth.visuals import VisualParams

    config = SynthConfig(classes=classes, per_class=per_class, relevant_fraction=relevant_fraction, seed=seed,
                         duration=duration, fps=fps, visual=replace(VisualParams(), size=size))  # fmt: skip
    with progress_bar("synth") as progress:
        summary = generate_benchmark(out, config, workers=workers, progress=progress)
    err_console().print(
        f"{summary['clips']} clips ({classes} classes x {per_class}) in {summary['seconds']:.1f} s, "
        f"{summary['bytes'] / 1e6:.1f} MB"
    )
    out_console().print(os.path.join(summary["out"], "manifest.csv"), highlight=False, soft_wrap=True)
