"""Training configuration: a typed dataclass tree loaded from YAML, validated with dotted paths.

A config file has the sections ``data``, ``audio``, ``model``, ``imd``, ``optim``, ``schedule``
and ``runtime`` (one dataclass each, below). :func:`load_config` reads it with ``yaml.safe_load``,
applies ``--set a.b=value`` overrides (each value parsed as YAML, so ``--set optim.lr=1e-3`` is a
float and ``--set model.modalities=[rgb,audio]`` a list) and converts the result into
:class:`TrainConfig`. Unknown keys, wrong types and impossible values raise
:class:`~avlabel.errors.AvlabelError` naming the dotted path (``optim.lr: must be > 0, got -1``).

Relative paths stay as written in the file and are resolved against the working directory when
training starts; the run directory's ``config.yaml`` records the absolute paths that were used.

Checks that need other modules (model names, label sets, the audio cache's provenance) happen in
:mod:`avlabel.train.preflight`, before any training starts; this module imports only PyYAML.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from avlabel.errors import AvlabelError, reading

Modality = Literal["rgb", "flow", "audio"]


@dataclass
class DataConfig:
    """Where the clips come from and how they are sampled (paper section 4.1: 8 frames at 224²)."""

    manifest: str  # CSV written by `avlabel data manifest` or `avlabel synth`
    label_set: str = "kinetics400"  # shipped name or a label file; defines the class indices
    train_split: str = "train"
    val_split: str = "val"
    flow_dir: str | None = None  # `avlabel flow --out DIR` (or denseflow layout); None: computed on the fly
    frames: int = 8  # T, frames per clip
    stride: int = 8  # frames between sampled frames (temporal stride)
    sample_fps: float | None = None  # measure the stride at this frame rate (None: each file's own)
    size: int = 224  # crop side in pixels
    decode_short_side: int | None = None  # resize while decoding (speed for large videos); None: as stored
    workers: int = 4  # DataLoader worker processes per rank


@dataclass
class AudioConfig:
    """The frozen-AST audio cache with relevance targets (`avlabel targets -o DIR`, section 3.5).

    ``k``, ``ya``, ``overlap`` and ``normalize`` say how the targets must have been built;
    training refuses a cache built with other values, so a config always names the supervision
    it trains with.
    """

    cache: str | None = None  # `avlabel targets -o DIR`; required when "audio" is a modality
    savld: str | None = None  # when given, the cache's targets must come from this SAVLD
    k: int = 10  # SAVLD audio labels per video class
    ya: int = 20  # Y_a, top AST labels per clip
    overlap: Literal["iou", "dice"] = "iou"
    # The overlap divided by its largest reachable value ("max") or kept as is ("none"); this
    # decides what imd.alpha means (see avlabel.audio.targets).
    normalize: Literal["max", "none"] = "max"


@dataclass
class ModelSection:
    """Which network to build (a name from ``avlabel models``) and how to run it."""

    name: str = "imd_b"
    fusion: str = "imd"  # fusion head: imd, late_concat, se_gate, nl_gate, gmu, avc, drop_pathway
    modalities: list[Modality] = field(default_factory=lambda: ["rgb", "flow", "audio"])
    # ImageNet initialisation of the visual streams: "auto" takes the named model's own timm
    # checkpoint (imd_b: vit_base_patch16_224.augreg_in21k), null starts from random weights,
    # anything else is a timm hub id or a local weights file.
    pretrained: str | None = "auto"
    # RGB normalisation (pixel / 255 - mean) / std. null: the statistics in the pretrained
    # checkpoint's own config (timm's pretrained_cfg; 0.5 / 0.5 for the augreg_in21k ViTs), or
    # the named model's (also 0.5 / 0.5) when training from scratch. Give both to override.
    rgb_mean: list[float] | None = None
    rgb_std: list[float] | None = None
    activation_checkpointing: bool = False  # recompute block activations in backward (less memory)
    compile: bool = False  # torch.compile the model
    overrides: dict[str, Any] = field(default_factory=dict)  # any other ModelConfig field


@dataclass
class ImdConfig:
    """Learnable irrelevant modality dropout (Eqs. 4-8) and its training signals (3.5, 3.6)."""

    alpha: float = 0.25  # relevance threshold of Eq. 5
    mode: Literal["M", "W"] = "M"  # M: mask audio below alpha; W: weight audio by rev everywhere
    relevance_weight: float = 1.0  # lambda, weight of the relevance BCE against the class CE
    # Probability of intra-class cross-modality audio replacement (3.6). null: 0.5 when an imd
    # head fuses audio with vision, else 0 -- Table 5 applies it to IMD* only; 0.5 is avlabel's
    # choice, the paper gives no value. Refused with avc (it breaks the correspondence labels).
    augment_p: float | None = None


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Section 4.1 gives SGD, lr 0.005, weight decay 1e-4 and a global batch of 64; the momentum
    and the schedule are avlabel's choices (the paper gives neither).
    """

    name: Literal["sgd", "adamw"] = "sgd"  # paper: SGD
    lr: float = 0.005  # peak learning rate for the global batch (paper: 0.005)
    momentum: float = 0.9  # SGD momentum (AdamW: beta1); avlabel's choice, the usual SGD value
    weight_decay: float = 1e-4  # paper: 1e-4
    global_batch: int = 64  # clips per optimiser step, summed over all ranks (paper: 64)
    micro_batch: int = 8  # clips per forward pass per rank; the rest is gradient accumulation
    label_smoothing: float = 0.0
    warmup_steps: int = 0  # linear warm-up from 0 to lr
    lr_schedule: Literal["cosine", "constant"] = "cosine"  # avlabel's choice; the paper gives no schedule
    min_lr: float = 0.0  # floor of the cosine schedule
    grad_clip: float | None = None  # max global gradient norm; None: no clipping


@dataclass
class ScheduleConfig:
    """How long to train and how often to validate, log and checkpoint."""

    epochs: int = 15
    val_every: int = 1  # validate every N epochs (and after the last one)
    checkpoint_every: int = 500  # write `last` every N optimiser steps (and at every epoch end)
    log_every: int = 10  # write a train record to metrics.jsonl / TensorBoard every N steps
    max_steps: int | None = None  # stop (with a checkpoint) after this many optimiser steps


@dataclass
class RuntimeConfig:
    """Hardware and reproducibility."""

    device: str = "auto"  # auto (cuda when available), cpu, cuda; torchrun ranks use cuda:LOCAL_RANK
    bf16: bool = True  # bf16 autocast on CUDA (ignored on the CPU)
    seed: int = 0


@dataclass
class TrainConfig:
    """Everything a training run needs; ``config.yaml`` in the run directory is its ``asdict``."""

    data: DataConfig
    audio: AudioConfig = field(default_factory=AudioConfig)
    model: ModelSection = field(default_factory=ModelSection)
    imd: ImdConfig = field(default_factory=ImdConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config, apply ``a.b=value`` overrides and validate it.

    Args:
        path: the YAML file, or None to build the config from overrides alone.
        overrides: ``"section.key=value"`` strings; values are parsed with ``yaml.safe_load``.

    Raises:
        AvlabelError: unreadable file, unknown key, wrong type or impossible value, naming the
            dotted path of the offending key.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_yaml_mapping(Path(path))
    for override in overrides:
        _apply_override(raw, override)
    config = config_from_dict(raw)
    return config


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Convert a plain nested dict (a parsed YAML file) into a validated :class:`TrainConfig`."""
    config = _build(TrainConfig, raw, "")
    _fill_defaults(config)
    _check_values(config)
    return config


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The plain nested dict of ``config`` (what ``config.yaml`` stores)."""
    return dataclasses.asdict(config)


def dump_config(config: TrainConfig) -> str:
    """``config`` as YAML text, readable back by :func:`load_config`."""
    import yaml

    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The mapping in YAML file ``path`` (``{}`` when empty); one-line errors otherwise."""
    import yaml

    if not path.is_file():
        state = "is a folder" if path.is_dir() else "not found"
        raise AvlabelError(f"config file {path} {state}; pass the path of a YAML file (see examples/)")
    try:
        with reading(f"config file {path}", "save it as UTF-8 YAML"):
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise AvlabelError(f"config file {path} is not valid YAML: {' '.join(str(error).split())}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise AvlabelError(f"config file {path} must hold a mapping of sections, got {type(raw).__name__}; see examples/ for the layout")
    return raw


def _apply_override(raw: dict[str, Any], override: str) -> None:
    """Set ``raw[a][b] = yaml.safe_load(value)`` for ``override == "a.b=value"``."""
    import yaml

    dotted, sep, text = override.partition("=")
    dotted = dotted.strip()
    if not sep or not dotted or any(not part for part in dotted.split(".")):
        raise AvlabelError(f"--set {override!r}: expected KEY=VALUE with a dotted key, e.g. optim.lr=0.01")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text  # an unquoted string YAML cannot parse (e.g. "a: b") is taken literally
    *parents, leaf = dotted.split(".")
    node = raw
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parents[: depth + 1])
            raise AvlabelError(f"--set {override!r}: {where} is not a section")
        node = child
    node[leaf] = value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``raw``, type-checking every field recursively."""
    where = prefix or "config"
    if not isinstance(raw, dict):
        raise AvlabelError(f"{where}: expected a mapping of keys, got {_describe(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {_join(prefix, close[0])!r}?" if close else f"; known keys: {', '.join(fields)}"
            raise AvlabelError(f"unknown config key {_join(prefix, str(key))!r}{hint}")
    kwargs = {}
    for name, spec in fields.items():
        dotted = _join(prefix, name)
        if name not in raw:
            has_default = spec.default is not dataclasses.MISSING or spec.default_factory is not dataclasses.MISSING
            if not has_default:
                if dataclasses.is_dataclass(hints[name]):
                    kwargs[name] = _build(hints[name], {}, dotted)
                    continue
                raise AvlabelError(f"missing required config key {dotted!r}")
            continue
        kwargs[name] = _convert(hints[name], raw[name], dotted)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, dotted: str) -> Any:
    """Check ``value`` against the type ``hint`` (converting int to float), or raise."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, dotted)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        for option in options:
            try:
                return _convert(option, value, dotted)
            except AvlabelError:
                continue
        raise AvlabelError(f"{dotted}: expected {_type_name(hint)}, got {_describe(value)}")
    if origin is Literal:
        if value not in args:
            raise AvlabelError(f"{dotted}: expected one of {', '.join(map(str, args))}, got {_describe(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise AvlabelError(f"{dotted}: expected a list, got {_describe(value)}")
        return [_convert(args[0], item, f"{dotted}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise AvlabelError(f"{dotted}: expected a mapping, got {_describe(value)}")
        return {str(k): v for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float:
        return _to_float(value, dotted)
    if hint in (int, float) and isinstance(value, bool) or not isinstance(value, hint):
        raise AvlabelError(f"{dotted}: expected {_type_name(hint)}, got {_describe(value)}")
    return value


def _to_float(value: Any, dotted: str) -> float:
    number = value
    if isinstance(value, str):
        # PyYAML follows YAML 1.1, which reads "1e-3" (no dot) as a string; accept it as a number.
        try:
            number = float(value)
        except ValueError:
            pass
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise AvlabelError(f"{dotted}: expected float, got {_describe(value)}")
    if not math.isfinite(number):
        raise AvlabelError(f"{dotted}: must be a finite number, got {value!r}")
    return float(number)


def _fill_defaults(config: TrainConfig) -> None:
    """Resolve defaults that depend on other settings (recorded resolved in ``config.yaml``)."""
    if config.imd.augment_p is None:
        config.imd.augment_p = 0.5 if _fuses_audio_with_vision(config, "imd") else 0.0


def _fuses_audio_with_vision(config: TrainConfig, head: str) -> bool:
    """True when ``config`` trains fusion head ``head`` on audio and at least one visual stream."""
    modalities = config.model.modalities
    return config.model.fusion == head and "audio" in modalities and any(m != "audio" for m in modalities)


def _check_values(config: TrainConfig) -> None:
    """Reject values no run could use, naming the dotted path."""
    data, audio, model, imd = config.data, config.audio, config.model, config.imd
    optim, schedule, runtime = config.optim, config.schedule, config.runtime
    _require(bool(data.manifest.strip()), "data.manifest", "must name a manifest CSV", data.manifest)
    _require(data.train_split != data.val_split, "data.val_split", "must differ from data.train_split", data.val_split)
    for name in ("frames", "stride", "size"):
        _require(getattr(data, name) >= 1, f"data.{name}", "must be >= 1", getattr(data, name))
    _require(data.workers >= 0, "data.workers", "must be >= 0", data.workers)
    _require(data.sample_fps is None or data.sample_fps > 0, "data.sample_fps", "must be > 0 (or null)", data.sample_fps)
    _require(
        data.decode_short_side is None or data.decode_short_side >= data.size,
        "data.decode_short_side",
        f"must be >= data.size ({data.size}) (or null)",
        data.decode_short_side,
    )
    _require(audio.k >= 1, "audio.k", "must be >= 1", audio.k)
    _require(audio.ya >= 1, "audio.ya", "must be >= 1", audio.ya)
    _require((model.rgb_mean is None) == (model.rgb_std is None), "model.rgb_std",
             "must be given together with model.rgb_mean (or both left null)", model.rgb_std)  # fmt: skip
    for name in ("rgb_mean", "rgb_std"):
        values = getattr(model, name)
        _require(values is None or len(values) == 3, f"model.{name}", "must list 3 numbers (R, G, B)", values)
    _require(model.rgb_std is None or min(model.rgb_std) > 0, "model.rgb_std", "must be positive", model.rgb_std)
    _require(len(model.modalities) >= 1, "model.modalities", "must name at least one of rgb, flow, audio", model.modalities)
    _require(len(set(model.modalities)) == len(model.modalities), "model.modalities", "lists a modality twice", model.modalities)
    if "audio" in model.modalities:
        _require(audio.cache is not None, "audio.cache", "is required when model.modalities includes audio (run `avlabel targets ... -o DIR`)", audio.cache)
    _require(0.0 <= imd.alpha <= 1.0, "imd.alpha", "must be in [0, 1]", imd.alpha)
    _require(imd.relevance_weight >= 0.0, "imd.relevance_weight", "must be >= 0", imd.relevance_weight)
    _require(0.0 <= imd.augment_p <= 1.0, "imd.augment_p", "must be in [0, 1]", imd.augment_p)
    _require(
        imd.augment_p == 0.0 or not _fuses_audio_with_vision(config, "avc"),
        "imd.augment_p",
        "must be 0 with model.fusion=avc: the intra-class audio swap gives a clip another video's audio, "
        "which avc's correspondence loss would take as a matching pair",
        imd.augment_p,
    )
    _require(optim.lr > 0.0, "optim.lr", "must be > 0", optim.lr)
    _require(0.0 <= optim.momentum < 1.0, "optim.momentum", "must be in [0, 1)", optim.momentum)
    _require(optim.weight_decay >= 0.0, "optim.weight_decay", "must be >= 0", optim.weight_decay)
    _require(optim.global_batch >= 1, "optim.global_batch", "must be >= 1", optim.global_batch)
    _require(optim.micro_batch >= 1, "optim.micro_batch", "must be >= 1", optim.micro_batch)
    _require(
        optim.global_batch % optim.micro_batch == 0,
        "optim.global_batch",
        f"must be a multiple of optim.micro_batch ({optim.micro_batch})",
        optim.global_batch,
    )
    _require(0.0 <= optim.label_smoothing < 1.0, "optim.label_smoothing", "must be in [0, 1)", optim.label_smoothing)
    _require(optim.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0", optim.warmup_steps)
    _require(0.0 <= optim.min_lr <= optim.lr, "optim.min_lr", "must be in [0, optim.lr]", optim.min_lr)
    _require(optim.grad_clip is None or optim.grad_clip > 0, "optim.grad_clip", "must be > 0 (or null for no clipping)", optim.grad_clip)
    _require(schedule.epochs >= 1, "schedule.epochs", "must be >= 1", schedule.epochs)
    _require(schedule.val_every >= 1, "schedule.val_every", "must be >= 1", schedule.val_every)
    _require(schedule.checkpoint_every >= 1, "schedule.checkpoint_every", "must be >= 1", schedule.checkpoint_every)
    _require(schedule.log_every >= 1, "schedule.log_every", "must be >= 1", schedule.log_every)
    _require(schedule.max_steps is None or schedule.max_steps >= 1, "schedule.max_steps", "must be >= 1 (or null)", schedule.max_steps)
    device = runtime.device
    _require(
        device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()),
        "runtime.device",
        "must be auto, cpu, cuda or cuda:N",
        device,
    )


def _require(ok: bool, dotted: str, message: str, value: Any) -> None:
    if not ok:
        raise AvlabelError(f"{dotted}: {message}, got {value!r}")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "null"


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if arg is type(None) else _type_name(arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if origin is not None:
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", str(hint))
