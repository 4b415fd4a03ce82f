"""Everything checked before a training run starts, and the plan the loop executes.

A run that fails after an hour because the flow folder lacks one video, or silently trains
against relevance targets computed for another label set, wastes a GPU day. So
`plan_training` opens every input the config names and cross-checks them up front:

* the label set loads and the manifest's labels all belong to it; both splits have clips;
* the flow folder covers every clip of both splits (or flow is computed on the fly);
* the audio cache holds every clip, its relevance targets were computed for this label set,
  for this manifest's labelling of each clip, with the config's ``k``, ``Y_a``, overlap and
  normalisation, and,
  when ``audio.savld`` is given, from that SAVLD; it holds audio time tokens when the model
  reads them (AVT), whose width and number the model takes;
* the global batch divides into micro-batches over the world size, and one epoch holds at
  least one optimiser step;
* the model config (a named config plus the model section and the data settings) is valid, and its RGB
  normalisation is known: the config's ``model.rgb_mean``/``rgb_std``, else the statistics in
  the pretrained checkpoint's own config, else (from scratch) the named model's.

Each failure is an `AvlabelError` naming the config key to change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avlabel.errors import AvlabelError
from avlabel.train.config import TrainConfig, model_config_of

if TYPE_CHECKING:
    from avlabel.labels import LabelSet
    from avlabel.models import ModelConfig
    from avlabel.train.items import TrainingItems

# ModelConfig fields that change how a model runs, not what it computes: resuming may change them.
RUNTIME_ONLY_MODEL_FIELDS = ("grad_checkpointing", "pretrained_image")


@dataclass
class TrainingPlan:
    """What the loop runs: resolved config, label set, datasets, model config, batch arithmetic."""

    config: TrainConfig  # with absolute paths
    label_set: LabelSet
    train_items: TrainingItems  # random clips, crops and flips, intra-class audio swap
    val_items: TrainingItems  # single centre view, no augmentation
    model_config: ModelConfig
    world_size: int
    accum_steps: int  # micro-batches per optimiser step on each rank
    steps_per_epoch: int  # optimiser steps per epoch

    @property
    def samples_per_step_per_rank(self) -> int:
        return self.config.optim.micro_batch * self.accum_steps


def plan_training(config: TrainConfig, world_size: int, error_log: Path | None = None) -> TrainingPlan:
    """Resolve and cross-check every input of ``config`` for a job of ``world_size`` ranks.

    Args:
        config: the loaded config (relative paths resolve against the working directory).
        world_size: number of training processes.
        error_log: file the video datasets append unreadable clips to.
    """
    from avlabel.data.manifest import read_manifest
    from avlabel.labels import load_label_set

    config = resolve_paths(config)
    data, optim = config.data, config.optim
    accum_steps = _accumulation_steps(optim.global_batch, optim.micro_batch, world_size)
    try:
        label_set = load_label_set(data.label_set)
    except AvlabelError as error:
        raise AvlabelError(f"data.label_set: {error}") from None
    try:
        manifest = read_manifest(data.manifest, label_set=label_set, check_files=True)
    except AvlabelError as error:
        raise AvlabelError(f"data.manifest: {error}") from None
    splits = {}
    for key in ("train_split", "val_split"):
        try:
            splits[key] = manifest.split(getattr(data, key))
        except AvlabelError as error:
            raise AvlabelError(f"data.{key}: {error}") from None
    train_manifest, val_manifest = splits["train_split"], splits["val_split"]
    per_step = optim.micro_batch * accum_steps
    steps_per_epoch = (len(train_manifest) // world_size) // per_step
    if steps_per_epoch < 1:
        raise AvlabelError(
            f"optim.global_batch: {optim.global_batch} is more than the {len(train_manifest)} training clips "
            "hold for one optimiser step; lower optim.global_batch"
        )

    modalities = config.model.modalities
    train_audio = val_audio = None
    audio_dim = audio_tokens = None
    if "audio" in modalities:
        train_audio, val_audio, audio_dim = _open_audio(config, label_set, train_manifest, val_manifest)
        if model_config_of(config).reads_audio_tokens:  # AVT: the model reads the cache's tokens
            train_audio.require_tokens(config.model.name)
            audio_tokens, audio_dim = train_audio.token_shape
    model_config = build_model_config(config, len(label_set), audio_dim, audio_tokens)

    train_items = _items(config, model_config, label_set, train_manifest, "train", train_audio, error_log)
    val_items = _items(config, model_config, label_set, val_manifest, "test", val_audio, error_log)
    return TrainingPlan(
        config=config,
        label_set=label_set,
        train_items=train_items,
        val_items=val_items,
        model_config=model_config,
        world_size=world_size,
        accum_steps=accum_steps,
        steps_per_epoch=steps_per_epoch,
    )


def resolve_paths(config: TrainConfig) -> TrainConfig:
    """A copy of ``config`` whose file paths are absolute (shipped label-set names stay names)."""

    def absolute(path: str | None) -> str | None:
        return str(Path(path).expanduser().resolve()) if path is not None else None

    data = config.data
    # A shipped name ("kinetics400") stays a name; a label file becomes an absolute path.
    label_set = absolute(data.label_set) if Path(data.label_set).expanduser().exists() else data.label_set
    pretrained = config.model.pretrained
    if pretrained not in (None, "auto") and Path(pretrained).expanduser().exists():
        pretrained = absolute(pretrained)
    return dataclasses.replace(
        config,
        data=dataclasses.replace(
            data, manifest=absolute(data.manifest), label_set=label_set, flow_dir=absolute(data.flow_dir)
        ),
        audio=dataclasses.replace(config.audio, cache=absolute(config.audio.cache), savld=absolute(config.audio.savld)),
        model=dataclasses.replace(config.model, pretrained=pretrained),
    )


def build_model_config(
    config: TrainConfig, num_classes: int, audio_dim: int | None, audio_tokens: int | None = None
) -> ModelConfig:
    """The `ModelConfig` of ``config``, with the RGB statistics its weights were trained with.

    ``audio_dim`` is the cache's embedding width, or for a model that reads audio tokens their
    width, and ``audio_tokens`` their number per window.
    """
    built = model_config_of(config, num_classes, audio_dim, audio_tokens)
    return dataclasses.replace(built, **_rgb_statistics(config.model, built.pretrained_image))


def _rgb_statistics(section, pretrained: str | None) -> dict[str, tuple[float, ...]]:
    """``rgb_mean``/``rgb_std`` for the model: the config's, else the pretrained checkpoint's own.

    Training from scratch (``pretrained`` None) keeps the named model's defaults. A checkpoint
    whose statistics cannot be read (a bare weights file) is refused rather than guessed.
    """
    if section.rgb_mean is not None:
        return {"rgb_mean": tuple(section.rgb_mean), "rgb_std": tuple(section.rgb_std)}
    if pretrained is None:
        return {}
    from avlabel.models import pretrained_rgb_statistics

    statistics = _run_checkpoint_statistics(pretrained) or pretrained_rgb_statistics(pretrained)
    if statistics is None:
        raise AvlabelError(
            f"model.rgb_mean: {pretrained} has no config saying which RGB mean/std its weights were trained with; "
            "set model.rgb_mean and model.rgb_std (e.g. [0.5, 0.5, 0.5] for timm's augreg ViTs, "
            "[0.485, 0.456, 0.406] / [0.229, 0.224, 0.225] for ImageNet-1k recipes), or pass a folder with its config.json"
        )
    return {"rgb_mean": statistics[0], "rgb_std": statistics[1]}


def _run_checkpoint_statistics(pretrained: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The RGB statistics an avlabel run's checkpoint was trained with (fine-tuning from a stage), else None."""
    from avlabel.train.checkpoint import read_metadata

    path = Path(pretrained)
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    try:
        config = read_metadata(path)["model_config"]
    except AvlabelError:  # not written by avlabel: the checkpoint's own config.json decides
        return None
    return tuple(config["rgb_mean"]), tuple(config["rgb_std"])


def _accumulation_steps(global_batch: int, micro_batch: int, world_size: int) -> int:
    per_pass = micro_batch * world_size
    if global_batch % per_pass:
        raise AvlabelError(
            f"optim.global_batch {global_batch} is not a multiple of optim.micro_batch {micro_batch} x "
            f"{world_size} process(es) = {per_pass}; change optim.global_batch or optim.micro_batch"
        )
    return global_batch // per_pass


def _open_audio(config: TrainConfig, label_set, train_manifest, val_manifest):
    """The `ClipAudio` of both splits, after checking where they came from."""
    from avlabel.audio.cache import AudioCache, read_bad_items
    from avlabel.audio.targets import RelevanceTargets
    from avlabel.train.items import ClipAudio

    audio = config.audio
    cache = AudioCache(audio.cache)
    cache.check_sources(
        [*train_manifest, *val_manifest],
        config.data.manifest,
        fix=f"set audio.cache to the cache built for data.manifest (avlabel targets --manifest {config.data.manifest} -o DIR)",
    )
    targets = RelevanceTargets.load(audio.cache)
    meta = targets.meta
    where = f"the relevance targets in {audio.cache}"
    video_labels = meta.get("video_labels", {})
    if video_labels.get("sha256") != label_set.sha256:
        raise AvlabelError(
            f"data.label_set: {where} were computed for the label set {video_labels.get('name')!r} "
            f"({video_labels.get('count')} classes), not {label_set.name!r} ({len(label_set)}); rerun "
            "`avlabel targets` with a SAVLD built for this label set, or train with its label set"
        )
    if meta.get("k") != audio.k:
        raise AvlabelError(
            f"audio.k: {where} use k={meta.get('k')} SAVLD labels per class, the config asks for {audio.k}; rerun `avlabel targets --k {audio.k}` or set audio.k"
        )
    if meta.get("source") == "ast" and meta.get("ya") != audio.ya:
        raise AvlabelError(
            f"audio.ya: {where} use Y_a={meta.get('ya')}, the config asks for {audio.ya}; rerun `avlabel targets --ya {audio.ya}` or set audio.ya"
        )
    if targets.overlap != audio.overlap:
        raise AvlabelError(
            f"audio.overlap: {where} use {targets.overlap}, the config asks for {audio.overlap}; rerun `avlabel targets --overlap {audio.overlap}` or set audio.overlap"
        )
    if targets.normalize != audio.normalize:
        raise AvlabelError(
            f"audio.normalize: {where} were normalised with {targets.normalize!r}, the config asks for {audio.normalize!r} "
            f"(it changes what model.imd_alpha means); rerun `avlabel targets --normalize {audio.normalize}` or set audio.normalize"
        )
    if audio.savld is not None:
        from avlabel.savld import load_savld

        savld = load_savld(audio.savld)
        if savld.provenance != meta.get("savld_provenance"):
            raise AvlabelError(
                f"audio.savld: {where} were computed from {meta.get('savld')}, not from {audio.savld}; "
                "rerun `avlabel targets --savld` with this SAVLD or point audio.savld at the one used"
            )
    unreadable = read_bad_items(audio.cache)
    result = []
    for manifest in (train_manifest, val_manifest):
        video_ids = [record.video_id for record in manifest]
        clip_audio = ClipAudio(audio.cache, video_ids, cache, targets, unreadable)
        _check_target_classes(clip_audio, targets, manifest, label_set, where)
        result.append(clip_audio)
    return result[0], result[1], cache.dim


def _check_target_classes(clip_audio, targets, manifest, label_set, where: str) -> None:
    """Every cached clip's class in the targets must be its class in this manifest."""
    first = clip_audio.rows[:, 0]
    known = first >= 0
    expected = np.array([label_set.index(record.label) for record in manifest], dtype=np.int64)
    found = targets.row_class[first[known]]
    wrong = np.flatnonzero(found != expected[known])
    if len(wrong):
        record = [r for r, ok in zip(manifest, known) if ok][wrong[0]]
        raise AvlabelError(
            f"{where} give clip {record.video_id!r} the class {label_set.labels[found[wrong[0]]]!r}, but the manifest "
            f"says {record.label!r} ({len(wrong)} clips differ); they were computed for another manifest — rerun `avlabel targets`"
        )


def _items(config: TrainConfig, model_config, label_set, manifest, mode: str, audio, error_log: Path | None):
    """The `TrainingItems` of one split."""
    from avlabel.data.dataset import VideoClipDataset
    from avlabel.train.items import IntraClassAudioSwap, TrainingItems

    data = config.data
    visual = [m for m in config.model.modalities if m != "audio"]
    labels = np.array([label_set.index(record.label) for record in manifest], dtype=np.int64)
    clips = None
    if visual:
        clips = VideoClipDataset(
            manifest,
            label_set,
            mode=mode,
            modalities=visual,
            num_frames=data.frames,
            stride=data.stride,
            sample_fps=data.sample_fps,
            num_clips=1,
            num_crops=1,
            size=data.size,
            flow_dir=data.flow_dir,
            flow_on_the_fly=data.flow_dir is None,
            decode_short_side=data.decode_short_side,
            error_log=error_log,
            rgb_mean=model_config.rgb_mean,
            rgb_std=model_config.rgb_std,
        )
    swap = None
    if mode == "train" and audio is not None and config.imd.augment_p > 0:
        swap = IntraClassAudioSwap(labels, audio.present.any(axis=1), config.imd.augment_p, config.runtime.seed)
    channels = {"rgb": 3, "flow": 2}
    shapes = {m: (channels[m], data.frames, data.size, data.size) for m in visual}
    return TrainingItems(
        labels=labels,
        video_ids=[record.video_id for record in manifest],
        clips=clips,
        audio=audio,
        swap=swap,
        seed=config.runtime.seed,
        placeholder_shapes=shapes,
        train=mode == "train",
        audio_tokens=model_config.reads_audio_tokens,
    )
