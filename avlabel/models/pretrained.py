"""ImageNet initialisation of the visual streams from a timm ViT checkpoint (paper Sec. 3.2).

`filter_state_dict` is a pure function from a checkpoint's state dict to the model's
key space: it strips ``module.`` / ``_orig_mod.`` prefixes (DDP / ``torch.compile``), copies
the image ViT into every visual stream, adapts the patch embedding to the stream's input
channels (the flow stream averages the RGB filters over their input channels and repeats the
mean for its 2 channels, TSN's cross-modality initialisation) and to its patch size, resamples
the position embedding to the stream's patch grid, and starts each space-time block's temporal
attention from that block's spatial attention. The temporal embedding and LR are not in an
image model; they start at zero (``init_weights``), so the untrained video model computes the
image model's class embedding averaged over frames. An AVT audio token stream takes the ViT's
blocks, final norm and class token, as MBT initialises its spectrogram stream from the same
image ViT; its token projection and 1-D position embedding start from scratch.

An avlabel checkpoint (a training run's weights) loads as is, which is how fine-tuning starts
from a self-supervised stage: the heads of self-supervised losses the new run does not train
are left out of the load, heads the checkpoint lacks keep their initial values, and a
classifier for another number of classes is re-initialised; everything else must fit exactly.

`load_pretrained` reads the checkpoint (a local safetensors / .pth / .bin file or
folder, or a timm hub id) and loads strictly: every model parameter must come from the
checkpoint except an explicit list of intended exclusions, and every checkpoint tensor must be
used except the image classifier; anything else is an `AvlabelError`.

`pretrained_rgb_statistics` reads the RGB mean and std a checkpoint was trained with from
its own config, so that inputs are normalised as the weights expect (0.5 / 0.5 for the
``augreg_in21k`` ViTs, not ImageNet's 0.485 / 0.229: about 2.2x off in scale otherwise).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from avlabel._io import load_tensors
from avlabel.errors import AvlabelError, reading

_logger = logging.getLogger(__name__)

# Prefixes wrappers add to parameter names: DistributedDataParallel and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Image-classifier tensors of a ViT checkpoint that a video model has no use for.
_IMAGE_CLASSIFIER_KEYS = re.compile(r"^(head|pre_logits)\.")
# Model parameters an image checkpoint cannot provide (they keep their initial values).
_NOT_IN_IMAGE_MODEL = re.compile(
    r"^streams\.\w+\.(time_embed|blocks\.\d+\.time_fc\.\w+|mask_token)$"  # temporal embedding, LR (zero)
    r"|^streams\.audio\.(input_norm\.\w+|proj\.\w+|pos_embed)$"  # AVT: the audio tokens' way in
    r"|^(visual_fusion|audio_bottleneck|fusion|head|contrastive|matching_head|decoders)\."  # after the encoders
    r"|^(bottleneck|temperature)$"
)
# AVT's self-supervised heads: a run trains those of its losses, whatever its checkpoint had.
_PRETEXT_HEAD = re.compile(r"^(temperature|contrastive\..*|matching_head\..*|decoders\..*|streams\.\w+\.mask_token)$")
# Image ViT tensors an AVT audio token stream takes (no patch embedding, no 2-D position embedding).
_AUDIO_STREAM_KEYS = re.compile(r"^(cls_token|blocks\.\d+\..*|norm\.\w+)$")
# Temporal-attention parameters copied from the same block's spatial attention.
_SPATIAL_TO_TEMPORAL = (("norm1.", "norm_time."), ("attn.", "attn_time."))
_FILE_NAMES_IN_FOLDER = ("model.safetensors", "pytorch_model.bin")  # timm's save_pretrained / hub layout
_CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".npz")


@dataclass(frozen=True)
class LoadReport:
    """What `load_pretrained` did.

    Attributes:
        source: The checkpoint path or hub id.
        loaded: Model parameter names set from the checkpoint.
        not_loaded: Model parameter names left at their initial values (intended exclusions:
            temporal embedding, LR layers, audio bottleneck, fusion and classifier; AVT's audio
            token projection and position embedding, bottleneck and self-supervised heads).
        ignored: Checkpoint tensor names not used (the image classifier; from an avlabel
            checkpoint, self-supervised heads the model does not have and a classifier for
            another number of classes).
    """

    source: str
    loaded: tuple[str, ...]
    not_loaded: tuple[str, ...]
    ignored: tuple[str, ...]

    def summary(self) -> str:
        """One line for logs: counts and the names that were not loaded / ignored."""
        return (
            f"loaded {len(self.loaded)} tensors from {self.source}; not loaded (kept initial values): "
            f"{_abbreviate(self.not_loaded)}; ignored from the checkpoint: {_abbreviate(self.ignored)}"
        )


def filter_state_dict(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map a checkpoint's state dict onto ``model``'s parameter names (pure: nothing is loaded).

    Args:
        state_dict: A timm ViT state dict (image weights), or an avlabel model's own state dict,
            possibly nested under ``"model"`` / ``"state_dict"`` and with wrapper prefixes.
        model: The `MultimodalVideoTransformer` to load into; only
            its structure (streams, patch sizes, grids, which blocks are space-time) is read.

    Returns:
        ``{model parameter name: tensor}``. An avlabel state dict passes through with its
        prefixes stripped; an image state dict is mapped into every stream as described in the
        module docstring, without its classifier.
    """
    return _map_state_dict(state_dict, model)[0]


def load_pretrained(model: nn.Module, source: str | Path, *, timm_name: str | None = None) -> LoadReport:
    """Initialise ``model`` from a checkpoint, strictly.

    Args:
        model: The model to load into (unwrapped: not DDP, not compiled).
        source: A timm hub id such as ``"vit_base_patch16_224.augreg_in21k"`` (downloaded
            through timm), or a local checkpoint: ``.safetensors``, ``.pth`` / ``.pt`` / ``.bin``
            (read with ``weights_only=True``) or a folder holding ``model.safetensors`` /
            ``pytorch_model.bin``. An avlabel model state dict is accepted too.
        timm_name: For a local file in a format only timm reads (JAX ``.npz``), the timm
            architecture name; the file is then read by ``timm.create_model(timm_name,
            pretrained=True, pretrained_cfg_overlay=dict(file=source))``.

    Returns:
        A `LoadReport` (also logged) listing what was and was not loaded.

    Raises:
        AvlabelError: missing or unreadable file, unreachable hub, or a checkpoint whose layers
            or shapes do not fit the model (the message names the first offending tensor).
    """
    source = str(source)
    state_dict = _read_checkpoint(source, timm_name)
    mapped, ignored, is_image = _map_state_dict(state_dict, model)
    own = model.state_dict()
    dropped: list[str] = []
    if not is_image:  # an avlabel checkpoint: drop what this run's model intends to build anew
        mapped, dropped = _own_checkpoint_exclusions(mapped, own)
        ignored = sorted(ignored + dropped)
    what = "a plain ViT checkpoint (class token, no layer scale)" if is_image else "an avlabel checkpoint of this model"
    unexpected = sorted(set(mapped) - set(own))
    if unexpected:
        raise AvlabelError(
            f"checkpoint {source} has {len(unexpected)} tensors this model has no place for "
            f"({_abbreviate(unexpected)}); use {what} of depth {getattr(model.config, 'depth', '?')}"
        )
    for key, value in mapped.items():
        if value.shape != own[key].shape:
            raise AvlabelError(
                f"checkpoint {source} does not fit model {getattr(model.config, 'name', '')!r}: {key} has "
                f"shape {tuple(value.shape)} there but {tuple(own[key].shape)} in the model; choose a "
                f"checkpoint of the model's width and depth (e.g. the config's pretrained_image)"
            )
    missing = sorted(set(own) - set(mapped))
    intended = _NOT_IN_IMAGE_MODEL if is_image else _PRETEXT_HEAD
    not_intended = [key for key in missing if not intended.match(key) and key not in dropped]
    if not_intended:
        kind = "a ViT" if is_image else "a model of the same family, modalities and fusion"
        raise AvlabelError(
            f"checkpoint {source} lacks {len(not_intended)} tensors the model needs "
            f"({_abbreviate(not_intended)}); it is not {kind} with this model's depth and width"
        )
    # Strict load: the intended exclusions are filled with the model's own current values.
    model.load_state_dict({**{key: own[key] for key in missing}, **mapped}, strict=True)
    report = LoadReport(source=source, loaded=tuple(sorted(mapped)), not_loaded=tuple(missing), ignored=tuple(ignored))
    _logger.info(report.summary())
    return report


def _own_checkpoint_exclusions(
    mapped: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """An avlabel checkpoint without the tensors the model builds anew, and their names.

    Those are the self-supervised heads the model does not have, and a classifier for another
    number of classes (fine-tuning on another label set).
    """
    dropped = [key for key in mapped if key not in own and _PRETEXT_HEAD.match(key)]
    dropped += [key for key in mapped if key.startswith("head.") and key in own and mapped[key].shape != own[key].shape]
    return {key: value for key, value in mapped.items() if key not in dropped}, dropped


def pretrained_rgb_statistics(source: str | Path) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The per-channel RGB ``(mean, std)`` that checkpoint ``source`` was trained with, from its config.

    timm records them in a checkpoint's ``pretrained_cfg``. For a local folder, or a file inside
    one, they are read from the ``config.json`` that timm's ``save_pretrained`` and the Hugging
    Face hub put beside the weights; for a name in timm's registry
    (``vit_base_patch16_224.augreg_in21k``) from the registry, without downloading anything; for
    an ``hf-hub:`` id from the hub's ``config.json``.

    Returns:
        ``(mean, std)``, or None when the source carries no such config (a bare weights file, a
        name timm does not know, a config without ``mean``/``std``).

    Raises:
        AvlabelError: an unreadable ``config.json``, or a hub that cannot be reached.
    """
    source = str(source)
    path = Path(source).expanduser()
    if path.exists():
        return _statistics_from_config_file((path if path.is_dir() else path.parent) / "config.json")
    if source.startswith(("hf-hub:", "hf_hub:")):
        from huggingface_hub import hf_hub_download

        try:
            config_file = hf_hub_download(source.split(":", 1)[1], "config.json")
        except Exception as error:  # offline, unknown repository, no config.json
            raise AvlabelError(
                f"could not read the config of {source} from the Hugging Face hub ({_first_line(error)}); pass a local "
                "folder holding the checkpoint and its config.json, or set model.rgb_mean and model.rgb_std"
            ) from error
        return _statistics_from_config_file(Path(config_file))
    from timm.models import get_pretrained_cfg

    config = get_pretrained_cfg(source)
    if config is None or config.mean is None or config.std is None:
        return None
    return tuple(map(float, config.mean)), tuple(map(float, config.std))


def _statistics_from_config_file(config_file: Path) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``mean``/``std`` of a timm ``config.json`` (current layout, or the older single dict)."""
    if not config_file.is_file():
        return None
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AvlabelError(f"cannot read {config_file} ({_first_line(error)}); fix or remove it") from None
    config = data.get("pretrained_cfg", data) if isinstance(data, dict) else {}
    mean, std = config.get("mean"), config.get("std")
    if mean is None or std is None:
        return None
    return tuple(map(float, mean)), tuple(map(float, std))


def _map_state_dict(
    state_dict: dict[str, torch.Tensor], model: nn.Module
) -> tuple[dict[str, torch.Tensor], list[str], bool]:
    """``(mapped, ignored checkpoint keys, whether it was an image checkpoint)``."""
    state_dict = _strip_wrappers(_unnest(state_dict))
    if any(key.startswith("streams.") for key in state_dict):
        return state_dict, [], False
    mapped: dict[str, torch.Tensor] = {}
    ignored = sorted(key for key in state_dict if _IMAGE_CLASSIFIER_KEYS.match(key))
    for modality, stream in model.streams.items():
        prefix = f"streams.{modality}."
        is_audio_tokens = not hasattr(stream, "patch_embed")  # AVT's audio token stream
        for key, value in state_dict.items():
            if key in ignored or (is_audio_tokens and not _AUDIO_STREAM_KEYS.match(key)):
                continue
            if key == "patch_embed.proj.weight":
                value = _adapt_patch_embed(value, stream.patch_embed.proj.weight.shape)
            elif key == "pos_embed":
                value = _resample_pos_embed(value, stream.patch_embed.grid_size)
            mapped[prefix + key] = value
            match = re.match(r"blocks\.(\d+)\.(.*)$", key)
            if match and int(match[1]) < len(stream.blocks) and hasattr(stream.blocks[int(match[1])], "attn_time"):
                for spatial, temporal in _SPATIAL_TO_TEMPORAL:
                    if match[2].startswith(spatial):
                        mapped[f"{prefix}blocks.{match[1]}.{temporal}{match[2][len(spatial) :]}"] = value
    return mapped, ignored, True


def _adapt_patch_embed(weight: torch.Tensor, target_shape: torch.Size) -> torch.Tensor:
    """Fit a ``(D, C, P, P)`` patch-embedding kernel to the stream's channels and patch size."""
    from timm.layers import resample_patch_embed

    out_chans, in_chans, height, width = target_shape
    if weight.ndim == 4 and weight.shape[1] != in_chans:
        # TSN cross-modality initialisation: mean over the image channels, one copy per channel.
        weight = weight.mean(dim=1, keepdim=True).expand(-1, in_chans, -1, -1).contiguous()
    if weight.ndim == 4 and tuple(weight.shape[-2:]) != (height, width):
        weight = resample_patch_embed(weight, [height, width])
    return weight


def _resample_pos_embed(pos_embed: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    """Bicubically resample a ``(1, 1 + N, D)`` ViT position embedding to the stream's grid."""
    from timm.layers import resample_abs_pos_embed

    return resample_abs_pos_embed(pos_embed, new_size=list(grid_size), num_prefix_tokens=1)


def _unnest(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The state dict inside a training checkpoint (``model`` / ``state_dict`` keys), tensors only."""
    for key in ("model", "state_dict"):
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    return {key: value for key, value in checkpoint.items() if isinstance(value, torch.Tensor)}


def _strip_wrappers(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove leading ``module.`` / ``_orig_mod.`` (in any order and number) from every key."""
    stripped = {}
    for key, value in state_dict.items():
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        stripped[key] = value
    return stripped


def _read_checkpoint(source: str, timm_name: str | None) -> dict[str, torch.Tensor]:
    """Tensors from a local file/folder, or from timm (hub id, or ``timm_name`` + local file)."""
    path = Path(source).expanduser()
    if timm_name is not None:
        if not path.is_file():
            raise AvlabelError(f"checkpoint file not found: {path}; pass an existing file with timm_name")
        return _timm_state_dict(timm_name, file=path)
    if path.is_dir():
        candidates = [path / name for name in _FILE_NAMES_IN_FOLDER if (path / name).is_file()]
        if not candidates:
            raise AvlabelError(f"no checkpoint in folder {path}; expected one of {', '.join(_FILE_NAMES_IN_FOLDER)}")
        path = candidates[0]
    if path.is_file():
        return _read_file(path)
    if path.suffix in _CHECKPOINT_SUFFIXES or ("/" in source and not source.startswith(("hf-hub:", "hf_hub:"))):
        raise AvlabelError(f"checkpoint file not found: {path}; check the path or pass a timm hub id")
    return _timm_state_dict(source, file=None)


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".npz":
        raise AvlabelError(
            f"{path} is a JAX .npz checkpoint; pass timm_name= (e.g. vit_base_patch16_224.augreg_in21k) "
            f"so timm can convert it"
        )
    fix = "re-download it or pass a .safetensors / .pth file saved with torch.save(state_dict)"
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        with reading(f"checkpoint {path}", fix, also=(SafetensorError,)):
            return load_file(str(path), device="cpu")
    checkpoint = load_tensors(path, f"checkpoint {path}", fix)
    if not isinstance(checkpoint, dict):
        raise AvlabelError(f"checkpoint {path} holds a {type(checkpoint).__name__}, not a state dict")
    return checkpoint


def _timm_state_dict(name: str, file: Path | None) -> dict[str, torch.Tensor]:
    """Image weights through timm: its hub download, or its reader for a local ``file``."""
    import timm

    overlay = {"file": str(file)} if file is not None else None
    try:
        # num_classes=0: the image classifier is never loaded.
        image_model = timm.create_model(name, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay)
    except RuntimeError as error:
        if "Unknown model" in str(error):
            raise AvlabelError(
                f"unknown timm model {name!r}; use a timm name like vit_base_patch16_224.augreg_in21k "
                f"or a local checkpoint path"
            ) from error
        raise AvlabelError(f"timm could not load {name!r} ({_first_line(error)})") from error
    except (OSError, ValueError) as error:  # no network, hub errors (huggingface_hub raises OSError subclasses)
        where = f"file {file}" if file is not None else "the Hugging Face hub"
        raise AvlabelError(
            f"could not load pretrained weights for {name!r} from {where} ({type(error).__name__}); "
            f"without internet, download the checkpoint elsewhere and pass its local path"
        ) from error
    return image_model.state_dict()


def _first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"


def _abbreviate(names: list[str] | tuple[str, ...], limit: int = 6) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} ... ({len(names)} in all)"
