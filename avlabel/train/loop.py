"""The training loop behind ``avlabel train`` (paper sections 3.5, 3.6 and 4.1), nanoGPT-style.

Read `train` top to bottom: join the torchrun job (if any), check every input
(`preflight`), build the model, optimiser and schedule, restore a checkpoint
when resuming, then loop over epochs -> optimiser steps -> micro-batches.

Scale. The configured ``optim.global_batch`` is reached by ``world_size x micro_batch x
accum_steps``; gradients are only all-reduced on the last micro-batch of a step (``no_sync``
on the others). CUDA runs under bf16 autocast; ``torch.compile`` and activation checkpointing
are options. Only rank 0 logs and writes; the unwrapped model is what gets saved.

Exact resume. Checkpoints are taken between optimiser steps and hold the step within the
epoch, the optimiser and schedule state and every rank's torch RNG state. The data order is a
pure function of (seed, epoch) and each item of (seed, epoch, index) (see
`sampler` and `items`), so a resumed run skips the
clips already seen and continues with exactly the batches, augmentations and dropout masks the
uninterrupted run would have used: on the CPU its final weights are bit-identical.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from avlabel._checks import check_output_dir
from avlabel._io import atomic_write_json, atomic_write_text
from avlabel._progress import progress_bar
from avlabel.errors import AvlabelError
from avlabel.models.inputs import model_inputs
from avlabel.train.checkpoint import (
    checkpoint_paths,
    load_training_state,
    resolve_checkpoint,
    save_checkpoint,
    weights_sha256,
)
from avlabel.train.config import TrainConfig, config_to_dict, dump_config
from avlabel.train.distributed import (
    DistContext,
    all_reduce_sum,
    gather_strings,
    setup_distributed,
    teardown_distributed,
)
from avlabel.train.items import collate_items
from avlabel.train.objective import LossTerms, imd_objective
from avlabel.train.preflight import (
    RUNTIME_ONLY_MODEL_FIELDS,
    TrainingPlan,
    plan_training,
)
from avlabel.train.runlog import RunLog, Throughput, write_environment
from avlabel.train.sampler import ResumableDistributedSampler, shard_indices

BAD_ITEMS_FILE = "bad_items.tsv"
REPLICAS_FILE = "replicas.json"
# Sums gathered per step / per validation pass (one all-reduce each).
# AVT's self-supervised losses, logged by name (NaN, reported as null, when a run does not train one).
PRETEXT_STATS = ("contrastive", "matching", "masked_video", "masked_audio", "masked_segment")
_STATS = (
    "loss",
    "ce",
    "rel_bce",
    *PRETEXT_STATS,
    "batches",
    "correct1",
    "correct5",
    "valid",
    "dropped",
    "with_audio",
    "skipped",
)
_LOSS_STATS = ("loss", "ce", "rel_bce", *PRETEXT_STATS)  # per-batch means (validation weighs them by clips)


@dataclass
class TrainResult:
    """How a call to `train` ended."""

    run_dir: Path
    step: int  # optimiser steps done
    epochs_done: int  # complete epochs
    best_top1: float | None  # best validation top-1 so far
    last_val: dict | None  # the last validation record
    stopped_early: bool  # stopped by schedule.max_steps before the last epoch ended
    replica_hashes: list[str]  # weights_sha256 of every rank's final weights (all equal)


def train(config: TrainConfig, run_dir: str | Path, *, resume: str | None = None, force: bool = False) -> TrainResult:
    """Train a model as ``config`` says, writing the run directory ``run_dir``.

    Args:
        config: the training configuration.
        run_dir: where config.yaml, environment.json, metrics.jsonl, tb/ and checkpoints/ go.
        resume: None for a fresh run (refused if ``run_dir`` already has checkpoints); ``"last"``
            to continue from ``run_dir``'s last checkpoint; or a checkpoint file / run directory
            to continue from.
        force: resume even if the checkpoint's model config differs from ``config``'s.

    Raises:
        AvlabelError: any bad input (before training starts), a non-finite loss (naming the
            last good checkpoint) or running out of GPU memory (suggesting gradient accumulation).
    """
    ctx = setup_distributed(config.runtime.device)
    try:
        return _train(config, Path(run_dir).resolve(), resume, force, ctx)
    finally:
        teardown_distributed()


def _train(config: TrainConfig, run_dir: Path, resume: str | None, force: bool, ctx: DistContext) -> TrainResult:
    from avlabel.models import build_model, load_pretrained

    # ---- inputs: everything is checked before any training starts ----------------------------
    # Nothing is written before every check passed: a refused run leaves no empty run directory.
    check_output_dir(run_dir, "--out")
    resume_from = _resume_checkpoint(run_dir, resume)
    plan = plan_training(config, ctx.world_size, error_log=run_dir / BAD_ITEMS_FILE)
    config = plan.config
    state = load_training_state(resume_from) if resume_from is not None else None
    if state is not None:
        _check_resumable(state, plan, force, resume_from)
    device = ctx.device
    total_steps = config.schedule.epochs * plan.steps_per_epoch

    # ---- model, optimiser, learning-rate schedule --------------------------------------------
    torch.manual_seed(config.runtime.seed)  # identical initial weights on every rank
    raw_model = build_model(plan.model_config)
    if state is None and plan.model_config.pretrained_image:
        report = load_pretrained(raw_model, plan.model_config.pretrained_image)
        _say(ctx, report.summary())
    raw_model.to(device)
    optimizer = _optimizer(raw_model, config)
    scheduler = _lr_schedule(optimizer, config, total_steps)
    epoch, step_in_epoch, step, best_top1 = 0, 0, 0, None
    if state is not None:
        epoch, step_in_epoch, step, best_top1 = _restore(
            state, resume_from, raw_model, optimizer, scheduler, ctx, config
        )
    else:
        torch.manual_seed(config.runtime.seed + ctx.rank)  # dropout differs across ranks
    _check_steps_left(config, run_dir, epoch, step)
    model, eval_model, autocast = _for_training(raw_model, config, ctx)

    # ---- data --------------------------------------------------------------------------------
    train_sampler = ResumableDistributedSampler(
        len(plan.train_items), ctx.world_size, ctx.rank, seed=config.runtime.seed
    )
    train_loader = _loader(plan.train_items, train_sampler, config, device, drop_last=True)
    val_loader = _loader(
        plan.val_items, shard_indices(len(plan.val_items), ctx.world_size, ctx.rank), config, device, drop_last=False
    )

    # ---- run directory (main process writes; every rank may append unreadable clips) -----------
    run_dir.mkdir(parents=True, exist_ok=True)
    # Only the main process logs and shows progress; the others' bar is disabled and log is None.
    main_only = contextlib.ExitStack()
    log = None
    if ctx.is_main:
        _write_run_description(run_dir, config, plan, ctx, resume_from)
        log = main_only.enter_context(
            contextlib.closing(RunLog(run_dir, resume_step=step if state is not None else None))
        )
    progress = main_only.enter_context(
        progress_bar("train", total_steps, disable=not ctx.is_main, completed=step, stats=True, keep=True)
    )

    def checkpoint(tag: str) -> None:
        rng = _gather_rng(ctx)  # every rank takes part; only the main process writes
        if ctx.is_main:
            save_checkpoint(
                run_dir,
                tag,
                raw_model,
                optimizer,
                scheduler,
                {
                    "model_config": plan.model_config.to_dict(),
                    "classes": list(plan.label_set.labels),
                    "label_set": plan.label_set.name,
                    "epoch": epoch,
                    "step_in_epoch": step_in_epoch,
                    "step": step,
                    "steps_per_epoch": plan.steps_per_epoch,
                    "world_size": ctx.world_size,
                    "best_top1": best_top1,
                    "config": config_to_dict(config),
                    "rng": rng,
                },
            )

    # ---- the loop: epochs -> optimiser steps -> micro-batches ----------------------------------
    def out_of_steps() -> bool:
        return config.schedule.max_steps is not None and step >= config.schedule.max_steps

    last_val = None
    window = torch.zeros(len(_STATS), dtype=torch.float64, device=device)  # sums since the last log record
    throughput = Throughput()
    with main_only:
        try:
            while epoch < config.schedule.epochs:
                train_sampler.set_position(epoch, step_in_epoch * plan.samples_per_step_per_rank)
                batches = iter(train_loader)
                model.train()
                while step_in_epoch < plan.steps_per_epoch and not out_of_steps():
                    step_started = time.perf_counter()
                    stats = all_reduce_sum(_accumulate_gradients(model, batches, plan, ctx, autocast, config), ctx)
                    totals = dict(zip(_STATS, stats.tolist()))  # the step's one host synchronisation
                    if not math.isfinite(totals["loss"]):
                        raise AvlabelError(_non_finite_message(run_dir, epoch, step + 1))
                    lr = _apply_gradients(raw_model, optimizer, scheduler, config)
                    step_in_epoch += 1
                    step += 1
                    window += stats
                    clips = int(totals["valid"] + totals["skipped"])
                    throughput.add(clips)
                    if ctx.is_main:
                        now = _summary(stats)
                        progress.update(
                            step,
                            description=f"epoch {epoch + 1}",
                            stats={
                                "loss": now["loss"],
                                "acc": now["top1"],
                                "drop": now["drop_rate"],
                                "clips/s": clips / (time.perf_counter() - step_started),
                                "lr": lr,
                            },
                        )
                        if step % config.schedule.log_every == 0:
                            log.write(
                                {
                                    "kind": "train",
                                    "epoch": epoch,
                                    "step": step,
                                    **_summary(window, lr=lr),
                                    "clips_per_s": throughput.rate(),
                                    "time": time.time(),
                                }
                            )
                            window.zero_()
                    if step_in_epoch < plan.steps_per_epoch and (
                        out_of_steps() or step % config.schedule.checkpoint_every == 0
                    ):
                        checkpoint("last")
                if step_in_epoch < plan.steps_per_epoch:
                    break  # schedule.max_steps reached mid-epoch (and checkpointed)

                # ---- epoch end: validate, keep the best, checkpoint ------------------------------
                epoch += 1
                step_in_epoch = 0
                if epoch % config.schedule.val_every == 0 or epoch == config.schedule.epochs:
                    last_val = {
                        "kind": "val",
                        "epoch": epoch - 1,
                        "step": step,
                        **_evaluate(eval_model, val_loader, ctx, autocast, config),
                        "time": time.time(),
                    }
                    improved = best_top1 is None or last_val["top1"] > best_top1
                    best_top1 = last_val["top1"] if improved else best_top1
                    if ctx.is_main:
                        log.write(last_val)
                        progress.print(_epoch_line(epoch, config.schedule.epochs, step, last_val, best_top1))
                    if improved:
                        checkpoint("best")
                checkpoint("last")
                if out_of_steps():
                    break
        except torch.cuda.OutOfMemoryError:
            raise AvlabelError(_oom_message(config, plan)) from None
    stopped_early = epoch < config.schedule.epochs  # by schedule.max_steps

    # ---- the replicas must hold identical weights --------------------------------------------
    hashes = gather_strings(weights_sha256(raw_model.state_dict()), ctx)
    if ctx.is_main:
        atomic_write_json(
            run_dir / REPLICAS_FILE, {"step": step, "world_size": ctx.world_size, "weights_sha256": hashes}
        )
    if len(set(hashes)) != 1:
        raise AvlabelError(
            f"the {ctx.world_size} ranks ended with different weights ({hashes}); this is a bug, please report it"
        )
    return TrainResult(run_dir, step, epoch, best_top1, last_val, stopped_early, hashes)


def _resume_checkpoint(run_dir: Path, resume: str | None) -> Path | None:
    """The weights file to resume from, or None for a fresh run (refusing to overwrite a run)."""
    last, _ = checkpoint_paths(run_dir, "last")
    if resume is None:
        if last.is_file():
            raise AvlabelError(
                f"{run_dir} already holds a run ({last.name}); pass --resume to continue it or --out for a new run"
            )
        return None
    if resume == "last":
        if not last.is_file():
            raise AvlabelError(
                f"nothing to resume: {run_dir} has no checkpoints/{last.name}; drop --resume to start a new run"
            )
        return last
    return resolve_checkpoint(resume, "last")


def _restore(state: dict, path: Path, model, optimizer, scheduler, ctx: DistContext, config: TrainConfig) -> tuple:
    """Load a checkpoint's weights, optimiser, schedule and RNG; its ``(epoch, step_in_epoch, step, best_top1)``."""
    from safetensors.torch import load_model

    load_model(model, str(path), strict=True, device=str(ctx.device))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _restore_rng(state["rng"], ctx, fallback_seed=config.runtime.seed + ctx.rank + state["step"])
    _say(ctx, f"resuming from {path} at epoch {state['epoch'] + 1}, step {state['step']}")
    return state["epoch"], state["step_in_epoch"], state["step"], state["best_top1"]


def _check_steps_left(config: TrainConfig, run_dir: Path, epoch: int, step: int) -> None:
    """Refuse to resume a run that already used its epochs or its schedule.max_steps."""
    schedule = config.schedule
    if epoch >= schedule.epochs:
        raise AvlabelError(
            f"the run in {run_dir} already finished its {schedule.epochs} epochs; raise schedule.epochs to train longer"
        )
    if schedule.max_steps is not None and step >= schedule.max_steps:
        raise AvlabelError(
            f"the run in {run_dir} already made schedule.max_steps={schedule.max_steps} steps; raise or remove it"
        )


def _for_training(model: torch.nn.Module, config: TrainConfig, ctx: DistContext):
    """``(model to train, model to validate, autocast)``: compiled and DDP-wrapped as configured, bf16 on CUDA."""
    from torch.nn.parallel import DistributedDataParallel

    device = ctx.device
    if config.model.compile:
        model = torch.compile(model)
    eval_model = model  # validation runs outside DDP: uneven shards must not wait on each other
    if ctx.is_distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    autocast = torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and config.runtime.bf16
    )
    return model, eval_model, autocast


def _write_run_description(
    run_dir: Path, config: TrainConfig, plan: TrainingPlan, ctx: DistContext, resume_from: Path | None
) -> None:
    """``config.yaml`` (the resolved config) and ``environment.json`` (what runs it, and the batch arithmetic)."""
    atomic_write_text(run_dir / "config.yaml", dump_config(config))
    write_environment(
        run_dir,
        device=str(ctx.device),
        world_size=ctx.world_size,
        extra={
            "accum_steps": plan.accum_steps,
            "micro_batch": config.optim.micro_batch,
            "global_batch": config.optim.global_batch,
            "steps_per_epoch": plan.steps_per_epoch,
            "train_clips": len(plan.train_items),
            "val_clips": len(plan.val_items),
            "resumed_from": str(resume_from) if resume_from is not None else None,
        },
    )


def _check_resumable(state: dict, plan: TrainingPlan, force: bool, path: Path) -> None:
    """Refuse a checkpoint of another model (unless forced) or of another batch layout."""
    saved = {k: v for k, v in state["model_config"].items() if k not in RUNTIME_ONLY_MODEL_FIELDS}
    wanted = {k: v for k, v in plan.model_config.to_dict().items() if k not in RUNTIME_ONLY_MODEL_FIELDS}
    differences = sorted(key for key in saved.keys() | wanted.keys() if saved.get(key) != wanted.get(key))
    if differences and not force:
        details = ", ".join(f"{key}: {saved.get(key)!r} -> {wanted.get(key)!r}" for key in differences[:4])
        raise AvlabelError(
            f"checkpoint {path} was trained with another model config ({details}); pass --force to resume anyway"
        )
    if list(state["classes"]) != list(plan.label_set.labels):
        raise AvlabelError(
            f"checkpoint {path} was trained on the label set {state['label_set']!r}, not {plan.label_set.name!r}; it cannot be resumed"
        )
    if state["steps_per_epoch"] != plan.steps_per_epoch and not force:
        raise AvlabelError(
            f"checkpoint {path} ran {state['steps_per_epoch']} steps per epoch, this config {plan.steps_per_epoch} "
            "(training clips or optim.global_batch changed); pass --force to resume anyway"
        )
    state["step_in_epoch"] = min(state["step_in_epoch"], plan.steps_per_epoch - 1)


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (paper 4.1) or AdamW; no weight decay on biases, norms and embeddings (timm's convention)."""
    optim = config.optim
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 or name in skip else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if optim.name == "sgd":
        return torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum)
    return torch.optim.AdamW(groups, lr=optim.lr, betas=(optim.momentum, 0.999))


def _lr_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """Linear warm-up, then cosine decay to ``min_lr`` (or constant), stepped per optimiser step."""
    optim = config.optim
    floor = optim.min_lr / optim.lr

    def factor(step: int) -> float:
        if step < optim.warmup_steps:
            return (step + 1) / optim.warmup_steps
        if optim.lr_schedule == "constant":
            return 1.0
        progress = min(1.0, (step - optim.warmup_steps) / max(1, total_steps - optim.warmup_steps))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _loader(items, sampler, config: TrainConfig, device: torch.device, drop_last: bool) -> DataLoader:
    workers = config.data.workers
    return DataLoader(
        items,
        batch_size=config.optim.micro_batch,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_items,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
        # The loader's own generator: creating an iterator must not consume the global RNG
        # (that stream drives dropout and is part of a checkpoint). Items are seeded by key.
        generator=torch.Generator().manual_seed(config.runtime.seed),
        prefetch_factor=4 if workers else None,
    )


def _accumulate_gradients(
    model, batches, plan: TrainingPlan, ctx: DistContext, autocast, config: TrainConfig
) -> torch.Tensor:
    """Forward and backward over one optimiser step's micro-batches; this rank's sums of ``_STATS``.

    Gradients are all-reduced only on the last micro-step (``no_sync`` on the others), and the
    loss is divided by the micro-steps so the accumulated gradient is the step's mean.
    """
    device = ctx.device
    model_config = plan.model_config
    stats = torch.zeros(len(_STATS), dtype=torch.float64, device=device)
    for micro_step in range(plan.accum_steps):
        batch = next(batches)
        sync = micro_step == plan.accum_steps - 1 or not ctx.is_distributed
        with contextlib.nullcontext() if sync else model.no_sync():
            masks, pretext_inputs = _pretext_inputs(batch, model_config, config, device)
            with autocast:
                output = model(**model_inputs(batch, device, model_config.audio_input), **pretext_inputs)
            terms = _objective(output, batch, model_config, config, device, ctx=ctx, masks=masks)
            (terms.loss / plan.accum_steps).backward()
        stats += _batch_stats(terms, output, batch, device)
    return stats


def _pretext_inputs(batch: dict, model_config, config: TrainConfig, device: torch.device) -> tuple:
    """``(masks, extra model arguments)`` of an AVT training batch: the masked pass's masks, the probe switch."""
    if not model_config.is_token_fusion:
        return None, {}
    from avlabel.train.avt_objective import draw_masks

    masks = draw_masks(batch, model_config, config.avt)
    return masks, {**masks.model_kwargs(device), "linear_probe": config.avt.classification_weight == 0}


def _objective(
    output, batch: dict, model_config, config: TrainConfig, device: torch.device, *, ctx=None, masks=None
) -> LossTerms:
    """The training loss of the model's family; without ``ctx`` (validation) AVT's class loss alone, unsmoothed."""
    labels, valid = batch["label"].to(device), batch["valid"].to(device)
    smoothing = config.optim.label_smoothing if ctx is not None else 0.0
    if model_config.is_token_fusion:
        from avlabel.train.avt_objective import avt_objective

        avt = config.avt if ctx is not None else None
        return avt_objective(output, labels, valid, avt, masks=masks, ctx=ctx, label_smoothing=smoothing)
    return imd_objective(
        output,
        labels,
        _relevance(batch, device),
        valid,
        relevance_weight=config.imd.relevance_weight,
        label_smoothing=smoothing,
    )


def _apply_gradients(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, config: TrainConfig) -> float:
    """Clip (if configured), step the optimiser and the schedule, clear the gradients; the lr that was used."""
    if config.optim.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return lr


def _relevance(batch: dict, device: torch.device) -> torch.Tensor | None:
    return batch["relevance"].to(device, non_blocking=True) if "relevance" in batch else None


def _batch_stats(terms, output, batch: dict, device: torch.device) -> torch.Tensor:
    """This micro-batch's contribution to the sums of ``_STATS`` (no host synchronisation)."""
    valid = batch["valid"].to(device)
    labels = batch["label"].to(device)
    top = output.logits.detach().topk(min(5, output.logits.shape[1]), dim=1).indices  # (B, 5)
    hit = top == labels[:, None]
    dropped = with_audio = torch.zeros((), device=device)
    if output.keep is not None and "audio_present" in batch:
        present = batch["audio_present"].to(device) & valid
        with_audio = present.sum()
        dropped = (present & ~output.keep).sum()
    # NaN marks a term the run does not have (no relevance network, an AVT loss that is off);
    # the summary reports it as null.
    nan = torch.full((), math.nan, device=device)
    rel_bce = terms.rel_bce.detach() if terms.rel_bce is not None else nan
    pretext = [terms.pretext[name].detach() if name in terms.pretext else nan for name in PRETEXT_STATS]
    return torch.stack(
        [
            terms.loss.detach(),
            terms.ce.detach(),
            rel_bce,
            *pretext,
            torch.ones((), device=device),
            (hit[:, 0] & valid).sum(),
            (hit.any(dim=1) & valid).sum(),
            valid.sum(),
            dropped,
            with_audio,
            torch.tensor(float(len(batch["skipped"])), device=device),
        ]
    ).to(torch.float64)


def _summary(sums: torch.Tensor, **extra: float) -> dict:
    """Averages from summed ``_STATS``: loss terms per batch, accuracy per clip, drop rate per clip with audio."""
    s = dict(zip(_STATS, sums.tolist()))
    batches, valid = max(s["batches"], 1.0), max(s["valid"], 1.0)
    summary = {
        "loss": s["loss"] / batches,
        "ce": s["ce"] / batches,
        "rel_bce": s["rel_bce"] / batches if math.isfinite(s["rel_bce"]) else None,
        **{name: s[name] / batches if math.isfinite(s[name]) else None for name in PRETEXT_STATS},
        "top1": s["correct1"] / valid,
        "top5": s["correct5"] / valid,
        "drop_rate": s["dropped"] / s["with_audio"] if s["with_audio"] else None,
        "skipped": int(s["skipped"]),
    }
    return {**summary, **extra}


@torch.no_grad()
def _evaluate(model, loader: DataLoader, ctx: DistContext, autocast, config: TrainConfig) -> dict:
    """Single-view validation over all ranks' shards: loss terms, top-1/top-5, audio drop rate."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(len(_STATS), dtype=torch.float64, device=ctx.device)
    model_config = _unwrapped(model).config
    for batch in loader:
        with autocast:
            output = model(**model_inputs(batch, ctx.device, model_config.audio_input))
        terms = _objective(output, batch, model_config, config, ctx.device)
        # Batch means weighted by clip count, so the epoch value is a per-clip mean.
        stats = _batch_stats(terms, output, batch, ctx.device)
        count = stats[_STATS.index("valid")]
        stats[: len(_LOSS_STATS)] *= count
        stats[_STATS.index("batches")] = count
        sums += stats
    model.train(was_training)
    return _summary(all_reduce_sum(sums, ctx))


def _unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a ``torch.compile`` wrapper (validation runs outside DDP)."""
    return getattr(model, "_orig_mod", model)


def _gather_rng(ctx: DistContext) -> dict:
    """Every rank's torch RNG state (CPU, and the rank's GPU), in rank order."""
    import torch.distributed as dist

    states = {"cpu": torch.get_rng_state()}
    if ctx.device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(ctx.device)
    if not ctx.is_distributed:
        return {key: [value] for key, value in states.items()}
    gathered = {}
    for key, value in states.items():
        everyone = [torch.empty_like(value, device=ctx.device) for _ in range(ctx.world_size)]
        dist.all_gather(everyone, value.to(ctx.device))
        gathered[key] = [tensor.cpu() for tensor in everyone]
    return gathered


def _restore_rng(states: dict, ctx: DistContext, fallback_seed: int) -> None:
    if len(states["cpu"]) != ctx.world_size:
        # Another world size: the run continues correctly, but dropout draws differ from an
        # uninterrupted run of either size.
        _say(ctx, f"checkpoint came from {len(states['cpu'])} process(es), now {ctx.world_size}: dropout is reseeded")
        torch.manual_seed(fallback_seed)
        return
    torch.set_rng_state(states["cpu"][ctx.rank])
    if ctx.device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"][ctx.rank], ctx.device)


def _non_finite_message(run_dir: Path, epoch: int, step: int) -> str:
    last, _ = checkpoint_paths(run_dir, "last")
    where = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written yet"
    return (
        f"the loss became NaN/inf at step {step} (epoch {epoch + 1}); {where}. Resume from it with "
        "`avlabel train --resume` and a lower optim.lr (or optim.grad_clip, or runtime.bf16=false)"
    )


def _oom_message(config: TrainConfig, plan: TrainingPlan) -> str:
    micro = config.optim.micro_batch
    smaller = max(1, micro // 2)
    return (
        f"out of GPU memory with optim.micro_batch={micro}; set --set optim.micro_batch={smaller}: gradient "
        f"accumulation ({plan.accum_steps} -> {plan.accum_steps * micro // smaller} micro-steps) keeps the global "
        f"batch of {config.optim.global_batch}. model.grad_checkpointing=true saves memory too"
    )


def _epoch_line(epoch: int, epochs: int, step: int, val: dict, best: float | None) -> str:
    drop = f"{val['drop_rate']:.1%}" if val["drop_rate"] is not None else "-"
    return (
        f"epoch {epoch}/{epochs} (step {step}): val loss {val['loss']:.4f}  top1 {val['top1']:.2%}  "
        f"top5 {val['top5']:.2%}  audio dropped {drop}  (best top1 {best:.2%})"
    )


def _say(ctx: DistContext, message: str) -> None:
    if ctx.is_main:
        from avlabel._console import err_console

        err_console().print(message, highlight=False)
