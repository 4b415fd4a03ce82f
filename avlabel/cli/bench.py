"""``avlabel bench``: training/inference clips/s, peak memory and MFU of model configs."""

from __future__ import annotations

from pathlib import Path

import click

from avlabel.cli._application import Application, pass_app


@click.command(name="bench")
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    default=("imd_b", "timesformer_b"),
    show_default=True,
    help="Model config to measure (repeat to compare several in one run; see `avlabel models`).",
)
@click.option("--batch", type=int, default=8, show_default=True, help="Clips per step.")
@click.option(
    "--device", default=None, help="cpu, cuda or cuda:N (default: the global --device, else cuda when available)."
)
@click.option("--frames", type=int, default=None, help="Frames per clip T (default: the config's, 8).")
@click.option("--size", type=int, default=None, help="Input side in pixels (default: the config's, 224).")
@click.option("--steps", type=int, default=10, show_default=True, help="Timed steps per phase.")
@click.option(
    "--warmup", type=int, default=3, show_default=True, help="Untimed steps before timing (include compilation)."
)
@click.option("--compile", "compile_model", is_flag=True, help="Run the model through torch.compile.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the results as JSON here.")
@pass_app
def bench(
    app: Application,
    models: tuple[str, ...],
    batch: int,
    device: str | None,
    frames: int | None,
    size: int | None,
    steps: int,
    warmup: int,
    compile_model: bool,
    output: Path | None,
) -> None:
    """Measure forward+backward and inference clips/s, peak memory and model FLOPs utilisation.

    Inputs are random tensors of the model's shapes (no data loading). MFU is the counted FLOPs
    of a training step over this device's measured bf16 (CUDA) or fp32 (CPU) matmul rate.

    Columns: params (millions), GFLOP (forward, per clip), train/s (training clips per second),
    stream/s (the same times the number of visual streams), MFU%, MiB (peak training memory),
    infer/s (inference clips per second).
    """
    from avlabel._checks import check_output_file
    from avlabel._console import err_console, out_console
    from avlabel._io import atomic_write_json
    from avlabel.bench.throughput import run_benchmarks

    if output is not None:
        check_output_file(output, "-o")  # before the benchmark, not after minutes of it
    device = app.resolve_device(device)
    console = err_console()

    def progress(result: dict) -> None:
        console.print(
            f"{result['model']}: {result['train_clips_per_s']:.2f} train clips/s, MFU {100 * result['mfu']:.1f}%"
        )

    with console.status(f"benchmarking {', '.join(models)} on {device} (batch {batch}, {warmup}+{steps} steps each)"):
        report = run_benchmarks(models, batch, device, steps, warmup, frames, size, compile_model, on_result=progress)
    out_console().print(_table(report))
    if output is not None:
        atomic_write_json(output, report)
        console.print(f"wrote {output}")


def _table(report: dict):
    """Compact enough for an 80-column pipe; the JSON has every figure."""
    from rich import box
    from rich.table import Table

    environment, first = report["environment"], report["results"][0]
    table = Table(
        title=f"{environment['name']} ({environment['device']}): batch {first['batch']}, {first['frames']}×{first['size']}², "
        f"{first['precision']}, peak matmul {report['peak_matmul_tflops']:.2f} TFLOP/s",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    # params in millions, forward GFLOPs per clip, clips/s (per visual stream), MFU in %, peak MiB
    columns = ("model", "params", "GFLOP", "train/s", "stream/s", "MFU%", "MiB", "infer/s")
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for r in report["results"]:
        memory = "–" if r["train_peak_memory_mib"] is None else f"{r['train_peak_memory_mib']:.0f}"
        table.add_row(
            r["model"],
            f"{r['parameters'] / 1e6:.1f}",
            f"{r['forward_gflops_per_clip']:.3g}",
            f"{r['train_clips_per_s']:.3g}",
            f"{r['train_stream_clips_per_s']:.3g}",
            f"{100 * r['mfu']:.1f}",
            memory,
            f"{r['inference_clips_per_s']:.3g}",
        )
    table.caption = (
        "\n".join(
            f"{pair}: train ×{ratio['train_clips_per_s']:.2f}, per stream ×{ratio['train_stream_clips_per_s']:.2f}, "
            f"inference ×{ratio['inference_clips_per_s']:.2f}"
            for pair, ratio in report["ratios"].items()
        )
        or None
    )
    return table
