"""One command that exercises and measures avlabel on a GPU, printing one table.

Run from the repository root (with avlabel installed, ``pip install -e .``)::

    python benchmarks/gpu_check.py                  # CUDA: full sizes, meant to finish in < 8 minutes on one GPU
    python benchmarks/gpu_check.py --device cpu     # tiny sizes on the CPU: what the test suite runs
    python benchmarks/gpu_check.py --skip compile   # leave parts out (bench, compile, ast, flow, cache, train)

Each row is one check, run the way a user runs it — the ``avlabel`` commands in subprocesses,
whose logs are kept in ``OUT/logs/`` — except two throughput loops that have no command:

* ``avlabel bench`` for imd_b and timesformer_b (bf16 autocast on CUDA): training and inference
  clips/s, peak memory and MFU, eager and with ``--compile``;
* AST-base forward on random weights at batch 64 (``bench_audio.py``'s measurement);
* tvl1-torch optical flow pairs/s on a 340x256 clip (``bench_flow.py``'s measurement);
* the audio cache end to end: ``avlabel synth`` (10 s clips), a random AST-base saved with
  ``save_pretrained``, ``avlabel savld`` and ``avlabel targets --ast`` on the device (clips/s of
  the extraction: decoding workers + filterbank + AST + cache commits);
* ``avlabel train`` of a small config (``examples/synthetic.yaml``: imd_tiny, RGB + flow + audio,
  on the cache just built, flow on the fly) for 50 bf16 steps: loss finite, checkpoint written;
  then ``avlabel train --resume`` to step 60.

The table goes to stdout and ``OUT/gpu_check.md``, every figure to ``OUT/gpu_check.json``; the
exit status is 1 when a check failed. ``--device cpu`` (or ``--preset tiny``) shrinks every size
and runs everything single-threaded: about 35 s on two cores, two minutes with the compile rows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
SECTIONS = ("bench", "compile", "ast", "flow", "cache", "train")


@dataclass(frozen=True)
class Preset:
    """Sizes of one run of the check."""

    models: tuple[str, ...]
    bench: tuple[str, ...]  # `avlabel bench` sizes (eager)
    bench_compile: tuple[str, ...]  # ... with --compile (its warm-up steps include compilation)
    ast_batch: int
    ast_steps: int
    ast_config: dict  # ASTConfig overrides; {} is AST-base
    flow_presets: tuple[str, ...]
    flow_batch: int
    synth: tuple[str, ...]  # `avlabel synth` options
    targets_batch: int
    train: tuple[str, ...]  # `--set` overrides of examples/synthetic.yaml
    train_steps: int
    resume_steps: int


PRESETS = {
    # The paper's input (8 x 224², batch 32) for the models; AST-base at batch 64; 960 ten-second clips.
    "full": Preset(
        models=("imd_b", "timesformer_b"),
        bench=("--batch", "32", "--steps", "10", "--warmup", "3"),
        bench_compile=("--batch", "32", "--steps", "10", "--warmup", "3"),
        ast_batch=64,
        ast_steps=10,
        ast_config={},
        flow_presets=("fast", "medium"),
        flow_batch=32,
        synth=("--classes", "12", "--per-class", "80", "--duration", "10", "--size", "64"),
        targets_batch=64,
        train=(
            "data.size=64",
            "data.frames=8",
            "optim.global_batch=16",
            "optim.micro_batch=16",
            "schedule.checkpoint_every=25",
        ),
        train_steps=50,
        resume_steps=60,
    ),
    # The same code paths at toy sizes, for the CPU and CI.
    "tiny": Preset(
        models=("imd_tiny", "timesformer_tiny"),
        bench=("--batch", "1", "--steps", "1", "--warmup", "1", "--frames", "2", "--size", "32"),
        bench_compile=("--batch", "1", "--steps", "1", "--warmup", "1", "--frames", "2", "--size", "32"),
        ast_batch=64,
        ast_steps=1,
        ast_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
        flow_presets=("ultrafast",),
        flow_batch=1,
        synth=("--classes", "2", "--per-class", "10", "--duration", "1", "--size", "32", "--fps", "10"),
        targets_batch=8,
        train=(
            "data.size=32",
            "data.frames=4",
            "data.stride=2",
            "optim.global_batch=4",
            "optim.micro_batch=4",
            "schedule.checkpoint_every=3",
            "schedule.log_every=1",
        ),
        train_steps=6,
        resume_steps=8,
    ),
}


class CheckFailed(Exception):
    """A check whose command failed or whose result is wrong; the message is the table's."""


@dataclass
class Row:
    check: str
    setting: str
    result: str = ""
    status: str = "ok"
    seconds: float | None = None  # None: filled by the command of the row above
    figures: dict = field(default_factory=dict)


@dataclass
class Context:
    device: str
    preset: Preset
    out: Path
    workers: int
    skip: set[str]
    rows: list[Row] = field(default_factory=list)

    def avlabel(self, name: str, *args: str, timeout: float = 480) -> subprocess.CompletedProcess:
        """Run ``python -m avlabel ARGS``; its output goes to ``OUT/logs/NAME.log``; failure raises CheckFailed."""
        command = [sys.executable, "-m", "avlabel", *map(str, args)]
        env = dict(os.environ)
        if self.device == "cpu":  # tiny sizes gain nothing from threads, and OpenMP threads spin on a shared CPU
            env.setdefault("OMP_NUM_THREADS", "1")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.out, env=env)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"`avlabel {args[0]}` ran past {timeout:.0f} s") from None
        log = self.out / "logs" / f"{name}.log"
        log.write_text(f"$ {' '.join(command)}\n{done.stdout}\n{done.stderr}", encoding="utf-8")
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            raise CheckFailed(f"`avlabel {args[0]}` exit {done.returncode}: {lines[-1][:160]} (log: logs/{log.name})")
        return done


def _run(context: Context, rows: Row | list[Row], section: str, function, *, needs: Row | None = None) -> Row:
    """Run one check, ``function(*rows)``, filling its table rows (one command may fill several).

    A failure is recorded in the rows, not raised, so that the later checks still run. Returns
    the first row (what a later check ``needs``).
    """
    rows = [rows] if isinstance(rows, Row) else rows
    context.rows += rows
    status, result = "ok", None
    start = time.perf_counter()
    if section in context.skip:
        status, result = "skipped", f"--skip {section}"
    elif needs is not None and needs.status != "ok":
        status, result = "skipped", f"needs: {needs.check}"
    else:
        try:
            function(*rows)
        except CheckFailed as error:
            status, result = "FAILED", str(error)
        except Exception as error:  # noqa: BLE001 - the table reports it, the next checks still run
            status, result = "FAILED", f"{type(error).__name__}: {error}"[:200]
    for row in rows:
        row.status, row.result = status, row.result if result is None else result
    rows[0].seconds = time.perf_counter() - start  # the others came from the same command
    for row in rows:
        print(f"[{rows[0].seconds:6.1f} s] {row.check}: {row.status} {row.result}", file=sys.stderr, flush=True)
    return rows[0]


# -- the checks ---------------------------------------------------------------------------------
def check_models(context: Context, compile: bool) -> None:
    """`avlabel bench` of both models in one command; one row per model."""
    preset, mode = context.preset, "compile" if compile else "eager"
    report_path = context.out / f"bench_{mode}.json"
    rows = {
        model: Row(f"avlabel bench {model}, {'torch.compile' if compile else 'eager'}", "") for model in preset.models
    }

    def run(*_) -> None:
        models = [item for model in preset.models for item in ("-m", model)]
        context.avlabel(
            f"bench_{mode}",
            "bench",
            *models,
            "--device",
            context.device,
            *(preset.bench_compile if compile else preset.bench),
            "-o",
            report_path,
            *(["--compile"] if compile else []),
        )
        for result in json.loads(report_path.read_text())["results"]:
            row, memory = rows[result["model"]], result["train_peak_memory_mib"]
            row.setting = f"{result['precision']}, batch {result['batch']}, {result['frames']}x{result['size']}²"
            row.result = (
                f"train {result['train_clips_per_s']:.3g} clips/s ({result['train_stream_clips_per_s']:.3g} per "
                f"visual stream), MFU {100 * result['mfu']:.1f}%, peak {'–' if memory is None else f'{memory:,.0f}'} MiB; "
                f"inference {result['inference_clips_per_s']:.3g} clips/s"
            )
            row.figures = {
                key: result[key]
                for key in (
                    "train_clips_per_s",
                    "train_stream_clips_per_s",
                    "mfu",
                    "train_peak_memory_mib",
                    "inference_clips_per_s",
                    "precision",
                )
            }
            if not (result["train_clips_per_s"] > 0 and math.isfinite(result["train_clips_per_s"])):
                raise CheckFailed(f"{result['model']}: no training throughput")

    _run(context, list(rows.values()), "compile" if compile else "bench", run)


def check_ast(context: Context) -> None:
    from bench_audio import bench_ast_forward

    preset = context.preset
    name = "AST-base" if not preset.ast_config else "tiny AST"

    def run(row: Row) -> None:
        figures = bench_ast_forward(context.device, preset.ast_batch, preset.ast_steps, **preset.ast_config)
        row.figures = figures
        row.result = f"{figures['ast_forward_clips_per_s']:,.1f} clips/s ({figures['ast_dtype']})"

    _run(
        context,
        Row(f"{name} forward, random weights", f"batch {preset.ast_batch}, {preset.ast_steps} timed steps"),
        "ast",
        run,
    )


def check_flow(context: Context) -> None:
    from bench_flow import bench_speed

    from avlabel.data.flow_torch import PRESETS as FLOW_PRESETS
    from avlabel.data.flow_torch import TVL1Flow

    for name in context.preset.flow_presets:

        def run(row: Row, name=name) -> None:
            method = f"tvl1-torch[{name}] {context.device}"
            results: dict = {}
            bench_speed(
                {method: TVL1Flow(FLOW_PRESETS[name], device=context.device, batch_pairs=context.preset.flow_batch)},
                results,
            )
            rate = results[f"_pairs_per_s[{method}]"]
            row.figures = {"pairs_per_s": rate}
            row.result = f"{rate:,.1f} frame pairs/s" + (" per CPU-second, 1 thread" if context.device == "cpu" else "")

        compiled = "compiled" if context.device.startswith("cuda") else "eager"
        _run(
            context,
            Row(f"tvl1-torch flow, preset {name}", f"340x256, batch {context.preset.flow_batch}, {compiled}"),
            "flow",
            run,
        )


def check_cache(context: Context) -> Row:
    """synth -> random AST -> savld -> targets; returns the row training depends on."""
    from avlabel.audio.ast import save_random_ast
    from avlabel.labels import load_label_set

    preset, work = context.preset, context.out / "data"
    synth_setting = " ".join(preset.synth)

    def synth(row: Row) -> None:
        done = context.avlabel("synth", "synth", "--out", work / "synth", *preset.synth, "--workers", context.workers)
        row.result = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "written"

    made = _run(context, Row("avlabel synth", synth_setting), "cache", synth)
    name = "AST-base" if not preset.ast_config else "tiny AST"

    def targets(row: Row) -> None:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # save_pretrained's progress bar would land between the status lines
        save_random_ast(work / "ast", load_label_set("audioset").labels, **preset.ast_config)
        context.avlabel(
            "savld",
            "savld",
            "--video",
            work / "synth" / "classes.txt",
            "--audio",
            "audioset",
            "-k",
            "10",
            "-o",
            work / "savld.json",
        )
        start = time.perf_counter()
        context.avlabel(
            "targets",
            "--device",
            context.device,
            "targets",
            "--manifest",
            work / "synth" / "manifest.csv",
            "--savld",
            work / "savld.json",
            "--ast",
            work / "ast",
            "--workers",
            context.workers,
            "--batch-size",
            preset.targets_batch,
            "-o",
            work / "audio",
        )
        command_seconds = time.perf_counter() - start
        extraction = json.loads((work / "audio" / "report.json").read_text())["extraction"]
        if extraction["computed"] != extraction["videos"] or extraction["bad_items"]:
            raise CheckFailed(
                f"cached {extraction['computed']} of {extraction['videos']} clips, {extraction['bad_items']} unreadable"
            )
        row.figures = {**extraction, "command_seconds": round(command_seconds, 1)}
        row.result = (
            f"{extraction['videos_per_second']:,.1f} clips/s ({extraction['videos']} clips in {extraction['seconds']:.1f} s; "
            f"the command {command_seconds:.0f} s with start-up and model load)"
        )

    setting = f"{name} (random, save_pretrained), {context.workers} decoding workers, batch {preset.targets_batch}"
    return _run(context, Row("audio cache end to end (avlabel targets)", setting), "cache", targets, needs=made)


def check_training(context: Context, cache: Row) -> None:
    preset, work, run_dir = context.preset, context.out / "data", context.out / "run"
    overrides = [
        f"data.manifest={work / 'synth' / 'manifest.csv'}",
        f"data.label_set={work / 'synth' / 'classes.txt'}",
        "data.flow_dir=null",
        f"data.workers={min(context.workers, 4)}",
        f"audio.cache={work / 'audio'}",
        f"audio.savld={work / 'savld.json'}",
        "runtime.bf16=true",
        *preset.train,
    ]

    def losses(after: int = 0) -> list[dict]:
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        return [record for record in records if record["kind"] == "train" and record["step"] > after]

    def train(row: Row) -> None:
        sets = [
            item
            for override in [*overrides, f"schedule.max_steps={preset.train_steps}"]
            for item in ("--set", override)
        ]
        context.avlabel(
            "train",
            "--device",
            context.device,
            "train",
            "--config",
            REPOSITORY / "examples" / "synthetic.yaml",
            "--out",
            run_dir,
            *sets,
        )
        records = losses()
        _check_losses(records, preset.train_steps)
        for name in ("last.safetensors", "last.state.pt"):
            if not (run_dir / "checkpoints" / name).is_file():
                raise CheckFailed(f"no checkpoints/{name} after training")
        rates = sorted(record["clips_per_s"] for record in records[1:] or records)
        row.figures = {
            "steps": records[-1]["step"],
            "first_loss": records[0]["loss"],
            "last_loss": records[-1]["loss"],
            "clips_per_s_median": rates[len(rates) // 2],
        }
        row.result = (
            f"{records[-1]['step']} steps, loss {records[0]['loss']:.3f} -> {records[-1]['loss']:.3f} (finite), "
            f"{row.figures['clips_per_s_median']:.1f} clips/s with loading, checkpoint written"
        )

    precision = "bf16 autocast" if context.device.startswith("cuda") else "fp32 (bf16 autocast is CUDA's)"
    setting = f"examples/synthetic.yaml (imd_tiny, rgb+flow+audio), {precision}, {', '.join(preset.train)}"
    trained = _run(context, Row("avlabel train", setting), "train", train, needs=cache)

    def resume(row: Row) -> None:
        done = context.avlabel(
            "resume",
            "--device",
            context.device,
            "train",
            "--resume",
            "--out",
            run_dir,
            "--set",
            f"schedule.max_steps={preset.resume_steps}",
        )
        if f"step {preset.train_steps}" not in done.stderr + done.stdout:
            raise CheckFailed(f"the run did not say it resumed at step {preset.train_steps}")
        records = losses(after=preset.train_steps)
        _check_losses(records, preset.resume_steps)
        replicas = json.loads((run_dir / "replicas.json").read_text())
        if replicas["step"] != preset.resume_steps:
            raise CheckFailed(f"the resumed run ended at step {replicas['step']}, not {preset.resume_steps}")
        row.figures = {"resumed_at": preset.train_steps, "steps": preset.resume_steps, "last_loss": records[-1]["loss"]}
        row.result = f"resumed at step {preset.train_steps}, reached {preset.resume_steps}, loss {records[-1]['loss']:.3f} (finite)"

    _run(
        context,
        Row("avlabel train --resume", f"schedule.max_steps={preset.resume_steps}"),
        "train",
        resume,
        needs=trained,
    )


def _check_losses(records: list[dict], last_step: int) -> None:
    if not records:
        raise CheckFailed("metrics.jsonl has no training records")
    if not all(math.isfinite(record["loss"]) for record in records):
        raise CheckFailed(f"non-finite loss: {[record['loss'] for record in records]}")
    if records[-1]["step"] != last_step:
        raise CheckFailed(f"the last logged step is {records[-1]['step']}, not {last_step}")


# -- the table ----------------------------------------------------------------------------------
def _environment(device: str) -> dict:
    import torch

    import avlabel

    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "avlabel": avlabel.__version__,
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def render_table(environment: dict, preset_name: str, rows: list[Row], seconds: float) -> str:
    """The markdown table (stdout and gpu_check.md)."""
    machine = environment["gpu"] or f"CPU ({environment['cpu_count']} cores, load {environment['load_average_1min']})"
    lines = [
        f"avlabel GPU check on {machine}: device {environment['device']}, preset {preset_name}, torch {environment['torch']}, "
        f"avlabel {environment['avlabel']}, {environment['time']}; {seconds:.0f} s in all",
        "",
        "| check | setting | result | s | status |",
        "|---|---|---|---:|---|",
    ]
    lines += [
        f"| {row.check} | {row.setting} | {row.result} | {'' if row.seconds is None else f'{row.seconds:.0f}'} | {row.status} |"
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda when available)")
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default=None, help="sizes (default: full on CUDA, tiny on the CPU)"
    )
    parser.add_argument("--out", type=Path, default=Path("gpu_check"), help="folder for the table, JSON, logs and data")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {', '.join(SECTIONS)}")
    parser.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1), help="decoding processes")
    args = parser.parse_args(argv)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {device}: no CUDA GPU is visible; use --device cpu")
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if unknown := skip - set(SECTIONS):
        parser.error(f"unknown --skip part(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    preset_name = args.preset or ("full" if device.startswith("cuda") else "tiny")
    out = args.out.resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    if (out / "run").exists() or (out / "data").exists():
        parser.error(f"{out} holds an earlier check (run/, data/); pass a new --out")
    if device == "cpu":
        torch.set_num_threads(1)  # as the commands (Context.avlabel); per-core figures for AST and flow
    context = Context(device, PRESETS[preset_name], out, args.workers, skip)
    environment = _environment(device)

    start = time.perf_counter()
    check_models(context, compile=False)
    check_models(context, compile=True)
    check_ast(context)
    check_flow(context)
    cache = check_cache(context)
    check_training(context, cache)
    seconds = time.perf_counter() - start

    table = render_table(environment, preset_name, context.rows, seconds)
    print(table)
    (out / "gpu_check.md").write_text(table, encoding="utf-8")
    report = {
        "environment": environment,
        "preset": preset_name,
        "seconds": round(seconds, 1),
        "ok": all(row.status != "FAILED" for row in context.rows),
        "rows": [row.__dict__ for row in context.rows],
    }
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
