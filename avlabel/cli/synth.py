"""``avlabel synth``: generate the synthetic audio-visual benchmark."""

from __future__ import annotations

import os

import click

_KINDS = "OWN,OTHER,BACKGROUND"


def _parse_mix(text: str, option: str) -> tuple[float, float, float]:
    from avlabel.errors import AvlabelError

    try:
        shares = tuple(float(part) for part in text.split(","))
    except ValueError:
        shares = ()
    if len(shares) != 3:
        raise AvlabelError(f"{option} {text!r}: expected three shares {_KINDS}, e.g. 0.5,0.35,0.15")
    return shares  # type: ignore[return-value]


@click.command(name="synth")
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write the benchmark into."
)
@click.option("--classes", default=8, show_default=True, help="Number of classes (at most 12).")
@click.option("--per-class", default=100, show_default=True, help="Clips per class (split 60/20/20).")
@click.option(
    "--audio-mix",
    default="0.5,0.35,0.15",
    show_default=True,
    metavar=_KINDS,
    help="Shares of clips whose sound is their own class's, another class's (misleading) and a "
    "background (noise, hum, silence); exact within every class and split.",
)
@click.option(
    "--class-audio-mix",
    multiple=True,
    metavar=f"CLASS={_KINDS}",
    help="The mix of one class instead of --audio-mix (repeatable), e.g. 'applauding=0.9,0.1,0'.",
)
@click.option(
    "--visual-cue",
    type=click.Choice(["hue-drift", "shape-motion"]),
    default="hue-drift",
    show_default=True,
    help="hue-drift: the class sets the frame's hue (RGB) and a camera pan's direction (flow); "
    "shape-motion: a small class object with a class shape and motion over clutter.",
)
@click.option(
    "--hue-sigma",
    default=0.4,
    show_default=True,
    help="hue-drift: noise (radians) on the class hue; sets RGB accuracy.",
)
@click.option(
    "--drift-sigma",
    default=0.3,
    show_default=True,
    help="hue-drift: noise (radians) on the class pan direction; sets flow accuracy.",
)
@click.option("--seed", default=0, show_default=True, help="Random seed; the same seed gives byte-identical files.")
@click.option("--size", default=64, show_default=True, help="Frame height and width in pixels.")
@click.option("--duration", default=2.0, show_default=True, help="Clip length in seconds.")
@click.option("--fps", default=25.0, show_default=True, help="Frame rate.")
@click.option(
    "--workers",
    default=min(4, os.cpu_count() or 1),
    show_default="min(4, CPUs)",
    type=click.IntRange(min=0),
    help="Worker processes (0 or 1: render in this process).",
)
@click.pass_context
def synth(
    ctx,
    out,
    classes,
    per_class,
    audio_mix,
    class_audio_mix,
    visual_cue,
    hue_sigma,
    drift_sigma,
    seed,
    size,
    duration,
    fps,
    workers,
) -> None:
    """Write a synthetic audio-visual benchmark: MP4 clips (H.264 + AAC), manifest, audio tags, synth.json.

    Classes are Kinetics-400 actions with a clear AudioSet sound. Labels describe what is seen;
    the sound of a clip is its class's own, another class's (misleading) or a background, tagged
    with the AudioSet names of what is really heard. A fusion benchmark, not a vision one: the
    default visual cue is simple and its accuracy is set by --hue-sigma and --drift-sigma.
    """
    from dataclasses import replace

    from avlabel._checks import check_output_dir
    from avlabel._console import err_console, out_console
    from avlabel._progress import progress_bar
    from avlabel.data.synth import SynthConfig, generate_benchmark
    from avlabel.data.synth.hue_drift import HueDriftParams
    from avlabel.data.synth.visuals import VisualParams
    from avlabel.errors import AvlabelError

    check_output_dir(out, "--out")
    per_class_mix = {}
    for item in class_audio_mix:
        name, sep, shares = item.rpartition("=")
        if not sep or not name.strip():
            raise AvlabelError(f"--class-audio-mix {item!r}: expected CLASS={_KINDS}, e.g. 'applauding=0.9,0.1,0'")
        per_class_mix[name.strip()] = _parse_mix(shares, f"--class-audio-mix {name.strip()!r}:")
    visual = VisualParams(
        size=size, cue=visual_cue, hue_drift=replace(HueDriftParams(), hue_sigma=hue_sigma, drift_sigma=drift_sigma)
    )
    config = SynthConfig(
        classes=classes,
        per_class=per_class,
        audio_mix=_parse_mix(audio_mix, "--audio-mix"),
        class_audio_mix=per_class_mix,
        seed=seed,
        duration=duration,
        fps=fps,
        visual=visual,
    )
    with progress_bar("synth") as progress:
        summary = generate_benchmark(out, config, workers=workers, progress=progress)
    err_console().print(
        f"{summary['clips']} clips ({classes} classes x {per_class}) in {summary['seconds']:.1f} s, "
        f"{summary['bytes'] / 1e6:.1f} MB"
    )
    out_console().print(os.path.join(summary["out"], "manifest.csv"), highlight=False, soft_wrap=True)
