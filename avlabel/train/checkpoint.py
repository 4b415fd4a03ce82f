"""Checkpoints of a training run: weights in safetensors, training state in a torch file.

Layout (the run-directory contract shared with ``avlabel eval``)::

    RUN_DIR/checkpoints/{tag}.safetensors   # the unwrapped model's weights
    RUN_DIR/checkpoints/{tag}.state.pt      # optimizer, scheduler, RNG states, epoch, step, ...

The safetensors metadata makes a weights file self-describing, so a model can be rebuilt from
it alone (nanoGPT keeps ``model_args`` in its checkpoints for the same reason): ``model_config``
(JSON of ``ModelConfig.to_dict()``), ``classes`` (JSON list, class-index order),
``classes_sha256``, ``label_set`` and ``avlabel_version``. The state file holds only tensors and
plain Python values, so it loads with ``torch.load(weights_only=True)`` and runs no pickled code.

Both files are written atomically. A random ``checkpoint_id`` written into both lets a loader
notice a torn pair (a crash between the two renames) instead of mixing two steps.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avlabel import __version__
from avlabel._io import atomic_path, load_tensors
from avlabel.errors import AvlabelError
from avlabel.labels import LabelSet
from avlabel.models.config import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    import torch

    from avlabel.models import ModelConfig
    from avlabel.train.config import TrainConfig

CHECKPOINT_DIR = "checkpoints"
_WEIGHTS_SUFFIX = ".safetensors"
_STATE_SUFFIX = ".state.pt"
# Keys of the training state that also go into the weights file's metadata.
_METADATA_KEYS = ("model_config", "classes", "label_set")
# ModelConfig fields added after checkpoints were first written, with the value every earlier
# checkpoint was built with (a missing key would otherwise take today's default).
_LEGACY_MODEL_CONFIG = {
    "se_reduction": 4,  # the se_gate bottleneck was D // 4 before it became a setting
    # RGB was ImageNet-normalised, whatever the weights, before the statistics were recorded.
    "rgb_mean": list(IMAGENET_MEAN),
    "rgb_std": list(IMAGENET_STD),
}


@dataclass
class LoadedRun:
    """A model restored from a run directory or a weights file (what ``avlabel eval`` uses)."""

    model: torch.nn.Module  # in eval mode, on the requested device
    model_config: ModelConfig
    train_config: TrainConfig | None  # None when only a weights file was given
    classes: list[str]  # class names in logit order
    label_set: str  # name of the label set the classes come from
    checkpoint_path: Path  # the .safetensors file the weights came from


def checkpoint_paths(run_dir: str | os.PathLike[str], tag: str) -> tuple[Path, Path]:
    """``(weights, state)`` file paths of checkpoint ``tag`` ("last", "best") in ``run_dir``."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    return folder / f"{tag}{_WEIGHTS_SUFFIX}", folder / f"{tag}{_STATE_SUFFIX}"


def save_checkpoint(run_dir, tag: str, model, optimizer, scheduler, state: dict[str, Any]) -> Path:
    """Write checkpoint ``tag`` of ``model`` (unwrapped: no DDP, no ``torch.compile`` wrapper).

    Args:
        run_dir: the run directory; files go to ``run_dir/checkpoints/``.
        tag: checkpoint name, e.g. "last" or "best".
        model: the bare ``nn.Module`` whose ``state_dict`` is saved.
        optimizer, scheduler: saved through their ``state_dict``.
        state: plain values describing the run: must hold ``model_config`` (dict), ``classes``
            (list of str) and ``label_set`` (str), which also go into the weights' metadata;
            everything else (epoch, step, RNG states, best metric, config) is stored as given.

    Returns:
        The path of the weights file.
    """
    import torch
    from safetensors.torch import save_model

    missing = [key for key in _METADATA_KEYS if key not in state]
    assert not missing, f"checkpoint state lacks {missing}"
    weights_path, state_path = checkpoint_paths(run_dir, tag)
    checkpoint_id = uuid.uuid4().hex
    full_state = {
        **state,
        "checkpoint_id": checkpoint_id,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
    }
    metadata = {
        "format": "pt",
        "model_config": json.dumps(state["model_config"]),
        "classes": json.dumps(list(state["classes"]), ensure_ascii=False),
        "classes_sha256": LabelSet(name=str(state["label_set"]), labels=tuple(state["classes"])).sha256,
        "label_set": str(state["label_set"]),
        "avlabel_version": __version__,
        "checkpoint_id": checkpoint_id,
        "step": str(state.get("step", "")),
    }
    # State first, weights second: the weights file is what readers look for, so it appearing
    # last means a complete pair (checked through checkpoint_id on load).
    with atomic_path(state_path) as tmp:
        torch.save(full_state, tmp)
    with atomic_path(weights_path) as tmp:
        # save_model (not save_file) handles tied weights, which safetensors refuses to alias.
        save_model(model, str(tmp), metadata=metadata)
    return weights_path


def read_metadata(weights_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The decoded metadata of a weights file: ``model_config`` and ``classes`` parsed from JSON."""
    from safetensors import SafetensorError, safe_open

    path = Path(weights_path)
    if not path.is_file():
        raise AvlabelError(f"checkpoint {path} not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except (OSError, SafetensorError) as error:
        raise AvlabelError(
            f"checkpoint {path} is not a readable safetensors file ({error}); re-save or pick another"
        ) from None
    if "model_config" not in raw or "classes" not in raw:
        raise AvlabelError(
            f"checkpoint {path} has no avlabel metadata (model_config, classes); was it written by `avlabel train`?"
        )
    metadata = dict(raw)
    metadata["model_config"] = _with_legacy_fields(json.loads(raw["model_config"]))
    metadata["classes"] = json.loads(raw["classes"])
    return metadata


def load_training_state(weights_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``.state.pt`` beside ``weights_path``, checked to belong to the same save."""
    weights_path = Path(weights_path)
    state_path = weights_path.with_name(weights_path.name[: -len(_WEIGHTS_SUFFIX)] + _STATE_SUFFIX)
    if not state_path.is_file():
        raise AvlabelError(
            f"training state {state_path} not found next to {weights_path.name}; cannot resume from weights alone"
        )
    state = load_tensors(state_path, f"training state {state_path}", "resume from a checkpoint `avlabel train` wrote")
    if not isinstance(state, dict):
        raise AvlabelError(
            f"training state {state_path} holds a {type(state).__name__}, not a training state; resume from another checkpoint"
        )
    if state.get("checkpoint_id") != read_metadata(weights_path).get("checkpoint_id"):
        raise AvlabelError(
            f"{weights_path.name} and {state_path.name} come from different saves (interrupted while writing); "
            f"resume from another checkpoint in {weights_path.parent}"
        )
    state["model_config"] = _with_legacy_fields(state["model_config"])
    return state


def resolve_checkpoint(run_dir_or_checkpoint: str | os.PathLike[str], checkpoint: str = "best") -> Path:
    """The weights file meant by a run directory plus a tag/path, or by a weights file itself."""
    target = Path(run_dir_or_checkpoint)
    if target.is_file():
        return _as_weights_path(target)
    if not target.is_dir():
        raise AvlabelError(
            f"{target} is neither a run directory nor a checkpoint file; pass a folder `avlabel train --out` wrote or a .safetensors file in it"
        )
    if checkpoint in ("best", "last"):
        weights_path, _ = checkpoint_paths(target, checkpoint)
        if not weights_path.is_file():
            available = sorted(p.name for p in (target / CHECKPOINT_DIR).glob(f"*{_WEIGHTS_SUFFIX}"))
            if not available:
                raise AvlabelError(
                    f"run directory {target} has no checkpoints yet (nothing in {target / CHECKPOINT_DIR})"
                )
            raise AvlabelError(
                f"run directory {target} has no {checkpoint!r} checkpoint; available: {', '.join(available)}"
            )
        return weights_path
    path = Path(checkpoint)
    if not path.is_absolute() and not path.exists():
        path = target / CHECKPOINT_DIR / checkpoint
    if not path.is_file():
        raise AvlabelError(f"checkpoint {checkpoint!r} not found (use 'best', 'last' or a path to a .safetensors file)")
    return _as_weights_path(path)


def load_run(run_dir_or_checkpoint, checkpoint: str = "best", device: str = "cpu") -> LoadedRun:
    """Rebuild a trained model for inference from a run directory or a weights file.

    Args:
        run_dir_or_checkpoint: a run directory (``config.yaml`` + ``checkpoints/``) or a
            ``.safetensors`` (or ``.state.pt``) checkpoint file.
        checkpoint: "best", "last" or a path, used when a run directory is given.
        device: where the model goes.

    Raises:
        AvlabelError: no checkpoint, unreadable file, or weights that do not fit their own config.
    """
    from safetensors.torch import load_model

    from avlabel.models import ModelConfig, build_model
    from avlabel.train.config import load_config

    weights_path = resolve_checkpoint(run_dir_or_checkpoint, checkpoint)
    metadata = read_metadata(weights_path)
    model_config = ModelConfig.from_dict(metadata["model_config"])
    model = build_model(model_config)
    try:
        load_model(model, str(weights_path), strict=True, device=str(device))
    except RuntimeError as error:
        raise AvlabelError(f"checkpoint {weights_path} does not match its own model_config: {error}") from None
    model.to(device).eval()
    train_config = None
    run_dir = Path(run_dir_or_checkpoint)
    if run_dir.is_dir() and (run_dir / "config.yaml").is_file():
        train_config = load_config(run_dir / "config.yaml")
    return LoadedRun(
        model=model,
        model_config=model_config,
        train_config=train_config,
        classes=list(metadata["classes"]),
        label_set=metadata.get("label_set", ""),
        checkpoint_path=weights_path,
    )


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """A hash of every tensor's name, dtype, shape and bytes, in sorted name order.

    Two models with this hash equal hold bit-identical weights; the distributed loop compares
    it across ranks, and tests compare it with the weights a checkpoint holds.
    """
    import torch

    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _with_legacy_fields(model_config: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's model config with the fields it predates set to what it was built with."""
    return {**_LEGACY_MODEL_CONFIG, **model_config}


def _as_weights_path(path: Path) -> Path:
    if path.name.endswith(_STATE_SUFFIX):
        return path.with_name(path.name[: -len(_STATE_SUFFIX)] + _WEIGHTS_SUFFIX)
    if not path.name.endswith(_WEIGHTS_SUFFIX):
        raise AvlabelError(f"{path} is not an avlabel checkpoint (expected a .safetensors or .state.pt file)")
    return path
