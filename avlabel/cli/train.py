"""``avlabel train``: train a model from a YAML config (thin adapter over `avlabel.train.loop.train`).

Also runs under torchrun, one process per GPU (or CPU rank)::

    torchrun --nproc_per_node 8 -m avlabel train --config examples/imd_b_kinetics400.yaml
"""

from __future__ import annotations

from pathlib import Path

import click

from avlabel.cli._application import Application, pass_app


@click.command(name="train")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML training config (see examples/). Optional with --resume: the run's config.yaml is used.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value by dotted key, e.g. --set optim.lr=0.01 --set model.modalities=[rgb,audio]. Repeatable.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Run directory for checkpoints, metrics and logs. [default: runs/<config name>]",
)
@click.option(
    "--resume",
    is_flag=False,
    flag_value="last",
    default=None,
    metavar="[PATH]",
    help="Continue a run: alone, from the run directory's last checkpoint; with PATH, from that checkpoint or run directory.",
)
@click.option("--force", is_flag=True, help="Resume even if the checkpoint's model config differs from the config's.")
@pass_app
def train(
    app: Application,
    config_path: Path | None,
    overrides: tuple[str, ...],
    out: Path | None,
    resume: str | None,
    force: bool,
) -> None:
    """Train a multimodal action-recognition model (IMD objective, section 3.5).

    Writes RUN_DIR/config.yaml, environment.json, metrics.jsonl, tb/ (TensorBoard) and
    checkpoints/{last,best}.safetensors (+ .state.pt). Every input is checked before training
    starts. Multi-GPU: torchrun --nproc_per_node N -m avlabel train ...
    """
    from avlabel._console import out_console
    from avlabel.errors import AvlabelError
    from avlabel.train.config import load_config
    from avlabel.train.loop import train as run_training

    run_dir = out or _run_dir_of(resume) or Path("runs") / (config_path.stem if config_path else "run")
    if config_path is None:
        if resume is None:
            raise AvlabelError("--config is required (a YAML file, see examples/); to continue a run pass --resume")
        config_path = run_dir / "config.yaml"
        if not config_path.is_file():
            raise AvlabelError(f"no config.yaml in {run_dir} to resume with; pass --config")
    overrides = list(overrides)
    if app.device is not None:
        overrides.append(f"runtime.device={app.device}")
    config = load_config(config_path, overrides)
    result = run_training(config, run_dir, resume=resume, force=force)
    if result.replica_hashes and _is_main_process():
        best = f"{result.best_top1:.2%}" if result.best_top1 is not None else "-"
        state = "stopped at schedule.max_steps" if result.stopped_early else "finished"
        out_console().print(
            f"{state}: {result.step} steps, {result.epochs_done} epochs, best val top-1 {best}; run directory {result.run_dir}",
            highlight=False,
        )


def _run_dir_of(resume: str | None) -> Path | None:
    """The run directory a ``--resume PATH`` points into (PATH itself, or RUN/checkpoints/FILE)."""
    if resume in (None, "last"):
        return None
    path = Path(resume)
    return path if path.is_dir() else path.parent.parent


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
