"""Training configuration: a typed dataclass tree loaded from YAML, validated with dotted paths.

A config file has the sections ``data``, ``audio``, ``model``, ``imd``, ``avt``, ``optim``,
``schedule`` and ``runtime`` (one dataclass each, below). `load_config` reads it with ``yaml.safe_load``,
applies ``--set a.b=value`` overrides (each value parsed as YAML, so ``--set optim.lr=1e-3`` is a
float and ``--set model.modalities=[rgb,audio]`` a list) and converts the result into
`TrainConfig`. Unknown keys, wrong types and impossible values raise
`AvlabelError` naming the dotted path (``optim.lr: must be > 0, got -1``).

Relative paths stay as written in the file and are resolved against the working directory when
training starts; the run directory's ``config.yaml`` records the absolute paths that were used.

Conversion follows avlabel's one set of rules (`avlabel._config`), and the model section is
generated from `ModelConfig`, which validates its values. Checks that need
other files (label sets, the audio cache's provenance, pretrained weights) happen in
`avlabel.train.preflight`, before any training starts; this module imports PyYAML and the
torch-free `avlabel.models.config` only.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from avlabel._config import from_mapping, to_plain
from avlabel.errors import AvlabelError, reading
from avlabel.models.config import TOKEN_FUSION_NAMES, ModelConfig, model_config


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
    # decides what model.imd_alpha means (see avlabel.audio.targets).
    normalize: Literal["max", "none"] = "max"


# ModelConfig fields training sets from other sections: the key that owns each.
DERIVED_MODEL_FIELDS = {
    "name": "model.name",
    "num_classes": "data.label_set",
    "num_frames": "data.frames",
    "img_size": "data.size",
    "audio_dim": "audio.cache (the cached embedding or token width)",
    "audio_tokens": "audio.cache (its audio tokens per window)",
    "pretext_heads": "avt.*_weight (a head for each self-supervised loss that is on)",
    "pretrained_image": "model.pretrained",
}
# Model fields whose null means "resolve when training starts" (from the pretrained checkpoint's
# own config); a null in any other model field takes the named config's value when the config loads.
RESOLVED_AT_START = ("rgb_mean", "rgb_std")


def _model_section_fields() -> list[tuple[str, Any, Any]]:
    """The model section: a named config, its weights, compilation, then ModelConfig's own fields."""
    hints = typing.get_type_hints(ModelConfig)
    architecture = [
        (spec.name, hints[spec.name] | None, field(default=None))
        for spec in dataclasses.fields(ModelConfig)
        if spec.name not in DERIVED_MODEL_FIELDS
    ]
    return [
        ("name", str, field(default="imd_b")),
        ("pretrained", str | None, field(default="auto")),
        ("compile", bool, field(default=False)),
        *architecture,
    ]


# The model section is generated from ModelConfig, the one owner of every architecture setting
# (type, default, meaning, validation), instead of restating it. Its keys:
# - name: a config from `avlabel models` (imd_b); its values fill every architecture key left null.
# - pretrained: "auto" (the named config's own timm ImageNet checkpoint, e.g.
#   vit_base_patch16_224.augreg_in21k), null (random weights), or a timm hub id or weights file.
# - compile: torch.compile the model.
# - every ModelConfig field except DERIVED_MODEL_FIELDS (set through the sections named there):
#   fusion, modalities, imd_alpha, imd_mode, grad_checkpointing, depth, ... rgb_mean/rgb_std
#   (RGB normalisation (pixel / 255 - mean) / std) left null take the statistics in the
#   pretrained checkpoint's own config (timm's pretrained_cfg), or the named config's when
#   training from scratch; give both to override.
ModelSection = dataclasses.make_dataclass("ModelSection", _model_section_fields())
ModelSection.__module__ = __name__  # make_dataclass's module= needs Python 3.12
ModelSection.__doc__ = "Which network to build: a named ModelConfig, its weights, and changes to its fields."
_ARCHITECTURE_FIELDS = tuple(spec.name for spec in dataclasses.fields(ModelSection))[
    3:
]  # after name, pretrained, compile


@dataclass
class ImdConfig:
    """The training signals of learnable irrelevant modality dropout (Secs. 3.5, 3.6).

    The fusion's own settings (alpha of Eq. 5, masking or weighting) are model fields:
    ``model.imd_alpha`` and ``model.imd_mode``.
    """

    relevance_weight: float = 1.0  # lambda, weight of the relevance BCE against the class CE
    # Probability of intra-class cross-modality audio replacement (3.6). null: 0.5 when an imd
    # head fuses audio with vision, else 0 -- Table 5 applies it to IMD* only; 0.5 is avlabel's
    # choice, the paper gives no value. Refused with avc (it breaks the correspondence labels).
    augment_p: float | None = None


# The self-supervised losses of AVT: weight key -> the model head it trains (ModelConfig.pretext_heads).
PRETEXT_LOSSES = {
    "contrastive_weight": "contrastive",
    "matching_weight": "matching",
    "masked_video_weight": "masked_video",
    "masked_audio_weight": "masked_audio",
    "masked_segment_weight": "masked_audio",  # the same audio decoder, other tokens masked
}


@dataclass
class AvtConfig:
    """The training objective of AVT (the AVT family: ``model.fusion`` bottleneck or full_attention).

    ``loss = classification_weight * mean per-stream CE + sum of weight * self-supervised loss``.
    A weight left null takes the AVT default below when the model has what the loss reads (0
    otherwise, and for IMD-family models, which cannot train these losses); the resolved values
    are what ``config.yaml`` records. None of the values is AVT's own (its paper gives none):
    the forms follow CAV-MAE, ALBEF and VideoMAE, the weights and ratios are avlabel's choices.
    """

    # Stages: 1.0 trains the classifier with the self-supervised losses (the joint stage, the
    # default); 0 is the self-supervised stage: no label reaches the encoder, and the shared head
    # trains as a linear probe on detached class embeddings (so validation top-1 still tracks the
    # representation). Fine-tune from its checkpoint with model.pretrained: RUN/checkpoints/last.safetensors.
    classification_weight: float = 1.0
    contrastive_weight: float | None = None  # symmetric InfoNCE, learnable temperature (default 0.1)
    matching_weight: float | None = None  # matching with hard negatives (default 0.1)
    masked_video_weight: float | None = None  # masked tube reconstruction (default 0.1)
    masked_audio_weight: float | None = None  # masked audio token reconstruction (default 0.1)
    masked_segment_weight: float | None = None  # masked active-segment reconstruction (default 0.1)
    video_mask_ratio: float = 0.75  # share of patch tubes masked per visual stream (CAV-MAE's 0.75)
    audio_mask_ratio: float = 0.75  # share of the valid audio tokens outside masked segments (CAV-MAE's 0.75)
    segment_mask_ratio: float = 0.25  # share of the active audio tokens masked as whole segments
    segment_length: int = 8  # audio tokens per masked segment (8 AST tokens: 0.8 s)


AVT_DEFAULT_WEIGHT = 0.1  # of every self-supervised loss against the classification CE; avlabel's choice


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
    avt: AvtConfig = field(default_factory=AvtConfig)
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
    """Convert a plain nested dict (a parsed YAML file) into a validated `TrainConfig`.

    A dict in the layout of earlier avlabel versions (a run directory's old ``config.yaml``, a
    checkpoint's stored config) is upgraded first: see `upgrade_layout`.
    """
    raw = upgrade_layout(raw)
    _refuse_derived_model_keys(raw)
    config = from_mapping(TrainConfig, raw)
    _fill_defaults(config)
    _check_values(config)
    return config


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The plain nested dict of ``config`` (what ``config.yaml`` stores)."""
    return to_plain(config)


def dump_config(config: TrainConfig) -> str:
    """``config`` as YAML text, readable back by `load_config`."""
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
        raise AvlabelError(
            f"config file {path} must hold a mapping of sections, got {type(raw).__name__}; see examples/ for the layout"
        )
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


# Keys of the layout before the model section was generated from ModelConfig -> their keys now.
_MOVED_KEYS = {
    ("imd", "alpha"): ("model", "imd_alpha"),
    ("imd", "mode"): ("model", "imd_mode"),
    ("model", "activation_checkpointing"): ("model", "grad_checkpointing"),
}


def upgrade_layout(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` in the current layout: old run directories and checkpoints keep loading.

    Earlier versions kept IMD's alpha and mode in the ``imd`` section, named gradient
    checkpointing ``model.activation_checkpointing`` and took other ModelConfig fields from a
    ``model.overrides`` mapping; they are all model fields now. A key given in both layouts is
    refused rather than one silently winning.
    """
    if not isinstance(raw, dict) or not all(isinstance(raw.get(name, {}), dict) for name in ("imd", "model")):
        return raw  # from_mapping names the misshapen section
    upgraded = {name: dict(section) if isinstance(section, dict) else section for name, section in raw.items()}
    for (old_section, old_key), (new_section, new_key) in _MOVED_KEYS.items():
        if old_key in upgraded.get(old_section, {}):
            _move(upgraded, old_section, old_key, new_section, new_key, f"model.{new_key}")
    model = upgraded.get("model", {})
    overrides = model.get("overrides")
    if isinstance(overrides, dict):
        for key in list(overrides):
            if key in DERIVED_MODEL_FIELDS or key in model:
                owner = DERIVED_MODEL_FIELDS.get(key, f"model.{key}")
                raise AvlabelError(f"model.overrides.{key}: set it through {owner} instead")
        model.update(model.pop("overrides"))
    return upgraded


def _refuse_derived_model_keys(raw: dict[str, Any]) -> None:
    """``model.num_frames`` and the like have another owner: name it (a plain unknown key would not)."""
    model = raw.get("model") if isinstance(raw, dict) else None
    for key in model if isinstance(model, dict) else ():
        if key in DERIVED_MODEL_FIELDS and key != "name":
            raise AvlabelError(f"model.{key}: set it through {DERIVED_MODEL_FIELDS[key]} instead")


def _move(raw: dict[str, Any], old_section: str, old_key: str, new_section: str, new_key: str, new_name: str) -> None:
    section = raw.setdefault(new_section, {})
    if new_key in section:
        raise AvlabelError(f"{old_section}.{old_key} and {new_name} set the same thing; keep only {new_name}")
    section[new_key] = raw[old_section].pop(old_key)


def model_config_of(
    config: TrainConfig,
    num_classes: int | None = None,
    audio_dim: int | None = None,
    audio_tokens: int | None = None,
) -> ModelConfig:
    """The `ModelConfig` ``config`` trains, validated by ModelConfig itself.

    The model section's fields on top of the named config, plus the fields other sections set
    (`DERIVED_MODEL_FIELDS`); ``num_classes``, ``audio_dim`` and ``audio_tokens`` are known once
    the label set and the audio cache are open (None: the named config's, for validating a
    config alone). A bad value is reported under the key that sets it (``data.size: 30 is not a
    multiple ...``).
    """
    section = config.model
    values = {name: getattr(section, name) for name in _ARCHITECTURE_FIELDS if getattr(section, name) is not None}
    derived = {
        "num_frames": config.data.frames,
        "img_size": config.data.size,
        "num_classes": num_classes,
        "audio_dim": audio_dim,
        "audio_tokens": audio_tokens,
        "pretext_heads": pretext_heads_of(config.avt),
    }
    if section.pretrained != "auto":
        derived["pretrained_image"] = section.pretrained
    try:
        return model_config(
            section.name, **values, **{key: value for key, value in derived.items() if value is not None}
        )
    except AvlabelError as error:
        raise AvlabelError(_owner_path(str(error))) from None


def pretext_heads_of(avt: AvtConfig) -> tuple[str, ...]:
    """The self-supervised heads the model needs: one for each AVT loss with a weight above 0."""
    heads = {head for key, head in PRETEXT_LOSSES.items() if (getattr(avt, key) or 0.0) > 0.0}
    return tuple(head for head in dict.fromkeys(PRETEXT_LOSSES.values()) if head in heads)


def _owner_path(message: str) -> str:
    """Rewrite ``model.img_size: ...`` (a ModelConfig path) to the training config key that sets it."""
    if message.startswith("unknown model "):
        return f"model.name: {message}"
    path, sep, rest = message.partition(":")
    name = path.removeprefix("model.")
    if sep and path.startswith("model.") and name in DERIVED_MODEL_FIELDS:
        return f"{DERIVED_MODEL_FIELDS[name]}:{rest}"
    return message


def _fill_defaults(config: TrainConfig) -> None:
    """Resolve defaults that depend on other settings (recorded resolved in ``config.yaml``)."""
    try:
        named = model_config(config.model.name)
    except AvlabelError as error:
        raise AvlabelError(_owner_path(str(error))) from None
    for name in _ARCHITECTURE_FIELDS:
        if getattr(config.model, name) is None and name not in RESOLVED_AT_START:
            setattr(config.model, name, getattr(named, name))
    if config.imd.augment_p is None:
        config.imd.augment_p = 0.5 if _fuses_audio_with_vision(config, "imd") else 0.0
    for key, head in PRETEXT_LOSSES.items():
        if getattr(config.avt, key) is None:
            setattr(config.avt, key, AVT_DEFAULT_WEIGHT if _can_train(config, head) else 0.0)


def _can_train(config: TrainConfig, head: str) -> bool:
    """Whether ``config``'s model has what the self-supervised loss of ``head`` reads."""
    model = config.model
    if model.fusion not in TOKEN_FUSION_NAMES:
        return False
    modalities = set(model.modalities)
    visual = bool(modalities & {"rgb", "flow"})
    if head == "contrastive":  # its embeddings are taken before the first fusion layer
        return visual and "audio" in modalities and model.fusion_layer >= 1
    if head == "matching":  # it reads the fused representation
        return visual and "audio" in modalities and model.fusion_layer < model.depth
    return visual if head == "masked_video" else "audio" in modalities


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
    _require(
        data.sample_fps is None or data.sample_fps > 0, "data.sample_fps", "must be > 0 (or null)", data.sample_fps
    )
    _require(
        data.decode_short_side is None or data.decode_short_side >= data.size,
        "data.decode_short_side",
        f"must be >= data.size ({data.size}) (or null)",
        data.decode_short_side,
    )
    _require(audio.k >= 1, "audio.k", "must be >= 1", audio.k)
    _require(audio.ya >= 1, "audio.ya", "must be >= 1", audio.ya)
    _require(
        (model.rgb_mean is None) == (model.rgb_std is None),
        "model.rgb_std",
        "must be given together with model.rgb_mean (or both left null)",
        model.rgb_std,
    )
    _check_avt(config)  # before the model: a loss it cannot train is named by its weight
    model_config_of(config)  # every architecture value, checked by ModelConfig
    if "audio" in model.modalities:
        _require(
            audio.cache is not None,
            "audio.cache",
            "is required when model.modalities includes audio (run `avlabel targets ... -o DIR`)",
            audio.cache,
        )
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
    _require(
        optim.grad_clip is None or optim.grad_clip > 0,
        "optim.grad_clip",
        "must be > 0 (or null for no clipping)",
        optim.grad_clip,
    )
    _require(schedule.epochs >= 1, "schedule.epochs", "must be >= 1", schedule.epochs)
    _require(schedule.val_every >= 1, "schedule.val_every", "must be >= 1", schedule.val_every)
    _require(schedule.checkpoint_every >= 1, "schedule.checkpoint_every", "must be >= 1", schedule.checkpoint_every)
    _require(schedule.log_every >= 1, "schedule.log_every", "must be >= 1", schedule.log_every)
    _require(
        schedule.max_steps is None or schedule.max_steps >= 1,
        "schedule.max_steps",
        "must be >= 1 (or null)",
        schedule.max_steps,
    )
    device = runtime.device
    _require(
        device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()),
        "runtime.device",
        "must be auto, cpu, cuda or cuda:N",
        device,
    )


def _check_avt(config: TrainConfig) -> None:
    """AVT's weights and ratios, and the settings they cannot live with."""
    avt = config.avt
    token_fusion = config.model.fusion in TOKEN_FUSION_NAMES
    for key in ("classification_weight", *PRETEXT_LOSSES):
        _require(getattr(avt, key) >= 0.0, f"avt.{key}", "must be >= 0", getattr(avt, key))
    for key, head in PRETEXT_LOSSES.items():
        if getattr(avt, key) > 0.0 and not _can_train(config, head):
            reason = (
                f"needs an AVT model (model.fusion: {' or '.join(TOKEN_FUSION_NAMES)})"
                if not token_fusion
                else "needs streams (and layers) this model does not have (see model.modalities, model.fusion_layer)"
            )
            _require(False, f"avt.{key}", f"{reason}; set it to 0", getattr(avt, key))
    _require(
        avt.classification_weight == 1.0 or token_fusion,
        "avt.classification_weight",
        "applies to AVT models only (IMD trains with the class CE at weight 1)",
        avt.classification_weight,
    )
    _require(
        avt.classification_weight > 0.0 or any(getattr(avt, key) > 0.0 for key in PRETEXT_LOSSES),
        "avt.classification_weight",
        "is 0 and so is every self-supervised weight: nothing would train; turn a loss on",
        avt.classification_weight,
    )
    pairs = [key for key in ("contrastive_weight", "matching_weight") if getattr(avt, key) > 0.0]
    _require(
        config.imd.augment_p == 0.0 or not pairs,
        "imd.augment_p",
        f"must be 0 with avt.{pairs[0] if pairs else ''} > 0: the intra-class audio swap gives a clip another "
        "video's audio, which the contrastive and matching losses would take as its own",
        config.imd.augment_p,
    )
    for key in ("video_mask_ratio", "audio_mask_ratio", "segment_mask_ratio"):
        _require(0.0 < getattr(avt, key) < 1.0, f"avt.{key}", "must be in (0, 1)", getattr(avt, key))
    _require(avt.segment_length >= 1, "avt.segment_length", "must be >= 1", avt.segment_length)


def _require(ok: bool, dotted: str, message: str, value: Any) -> None:
    if not ok:
        raise AvlabelError(f"{dotted}: {message}, got {value!r}")
