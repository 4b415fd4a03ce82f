"""Model configuration: one typed dataclass and the named configurations.

`ModelConfig` describes every architecture avlabel builds: the IMD family (the two-stream
video Transformer of Sec. 3.2, the audio bottleneck of Sec. 3.3, the fusion head of Sec. 3.4 or a
baseline of Table 5) and the AVT family (`avlabel.models.avt`: the same video streams and an
audio token stream that exchange information through MBT's bottleneck tokens or full
cross-modal attention, with the heads of AVT's self-supervised objectives). ``fusion`` says
which family a config builds. ``dataclasses.asdict(config)`` is stored in every checkpoint so a run
can be rebuilt from the checkpoint alone; `ModelConfig.from_dict` reads it (or a YAML
section) back with validation errors that name the dotted path of the bad field.

This module imports no torch, so configs can be read and validated cheaply.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import typing
from dataclasses import dataclass
from typing import Any, Literal

from avlabel._config import convert_fields
from avlabel.errors import AvlabelError

# RGB statistics (mean, std per channel, for pixels scaled to [0, 1]) of common pretraining
# recipes, named as in timm.data.constants: ImageNet-1k's, and the "Inception" 0.5 / 0.5 of
# Google's ViT and AugReg checkpoints (timm's *.augreg_in21k tags, where the named configs start).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_INCEPTION_MEAN = IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)

Modality = Literal["rgb", "flow", "audio"]
MODALITIES: tuple[Modality, ...] = typing.get_args(Modality)
VISUAL_MODALITIES = ("rgb", "flow")
# Names of the fusion heads in avlabel.models.fusion.FUSION_HEADS (kept here so validating a
# config does not import torch; a test checks the two agree).
FUSION_NAMES = ("imd", "late_concat", "se_gate", "nl_gate", "gmu", "avc", "drop_pathway")
# Token-level fusions of the AVT family (avlabel.models.avt): the modalities' Transformer layers
# exchange information through MBT's bottleneck tokens, or attend over every token of every
# modality ("full_attention", MBT's vanilla cross-attention). Their audio input is token sequences.
TOKEN_FUSION_NAMES = ("bottleneck", "full_attention")
# Heads of AVT's self-supervised objectives (avlabel.models.avt); a model has the heads of the
# losses it trains, so that no parameter goes without a gradient.
PretextHead = Literal["contrastive", "matching", "masked_video", "masked_audio"]
PRETEXT_HEADS: tuple[PretextHead, ...] = typing.get_args(PretextHead)
ImdMode = Literal["M", "W"]  # masking (Eq. 5) or weighting (Table 4)
IMD_MODES: tuple[ImdMode, ...] = typing.get_args(ImdMode)


@dataclass
class ModelConfig:
    """Architecture of a multimodal video model (paper Secs. 3.2-3.4, Figs. 3-4).

    The defaults are the paper's IMD-B: ViT-B/16 streams on 8 frames of 224x224, the last two
    blocks factorised in space and time, RGB + flow + audio fused by IMD with alpha = 0.25 in
    masking mode.
    """

    name: str = "imd_b"  # the named config this came from (informational)
    num_classes: int = 400  # Kinetics-400; training sets it from the label set
    modalities: tuple[Modality, ...] = ("rgb", "flow", "audio")  # any non-empty subset of MODALITIES
    # Audio-visual fusion: an IMD-family head on pooled embeddings (FUSION_NAMES; used when audio and
    # vision are both on) or an AVT-family token fusion (TOKEN_FUSION_NAMES; fuses all its streams).
    fusion: str = "imd"

    # Visual streams (Sec. 3.2). RGB and flow streams share these sizes but not their weights.
    img_size: int = 224  # square input frames
    patch_size: int = 16  # P: N = (img_size / P)^2 patches per frame
    num_frames: int = 8  # T the temporal embedding is learned for (other T are interpolated)
    embed_dim: int = 768  # D, also the width of the audio bottleneck output and of the fusion
    depth: int = 12  # L Transformer blocks per stream
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True  # as in ViT, so image checkpoints load
    space_time_blocks: int = 2  # last blocks with divided space-time attention (Eq. 3); = depth for TimeSformer
    drop_path_rate: float = 0.0  # stochastic depth at the last block (linear in depth); the paper gives none
    attn_drop_rate: float = 0.0
    proj_drop_rate: float = 0.0

    # Audio side (Sec. 3.3): the frozen AST's pooled embedding enters the audio bottleneck (IMD), or
    # its token sequence enters the audio token stream (AVT).
    audio_dim: int = 768  # width of the audio input: the AST embedding, or one audio token (768 for AST-base)
    audio_hidden_dim: int = 768  # hidden width of the bottleneck's first linear layer
    audio_tokens: int = 101  # N_a, audio tokens per window the token position embedding is learned for

    # Fusion and classifier (Secs. 3.4-3.5).
    imd_alpha: float = 0.25  # relevance threshold alpha of Eq. 5 (best in Table 4)
    imd_mode: ImdMode = "M"  # "M" masks audio below alpha (Eq. 5); "W" weights all audio by rev (Table 4)
    avc_loss_weight: float = 1.0  # weight of the avc head's correspondence loss in aux_loss
    se_reduction: int = 16  # se_gate bottleneck: max(D // r, 8) units (SENet's r = 16; 48 at D = 768)
    drop_pathway_p: float = 0.5  # drop_pathway head: probability of dropping a training clip's audio
    head_dropout: float = 0.0  # dropout inside the classifier MLP of Eq. 9

    # AVT token fusion (TOKEN_FUSION_NAMES; MBT, Nagrani et al. 2021).
    n_bottleneck: int = 4  # bottleneck tokens (MBT: 4)
    fusion_layer: int = 8  # first layer whose streams exchange information (MBT: 8 of 12); = depth: late fusion
    contrastive_dim: int = 256  # width of the contrastive projections (ALBEF: 256)
    pretext_heads: tuple[PretextHead, ...] = ()  # heads of the self-supervised losses (PRETEXT_HEADS)

    # Efficiency.
    grad_checkpointing: bool = False  # recompute each block's activations in backward (saves memory)

    # Weights the visual streams start from: a timm hub id or a local file. Read by training
    # through avlabel.models.load_pretrained; build_model never downloads anything.
    pretrained_image: str | None = None
    # RGB input normalisation, (pixel / 255 - mean) / std per channel, applied by the data
    # transforms in training, evaluation and prediction: the statistics the visual weights were
    # trained with. Training takes them from the pretrained checkpoint's own config (timm's
    # pretrained_cfg); these defaults are those of the augreg_in21k ViTs the named configs use.
    rgb_mean: tuple[float, ...] = IMAGENET_INCEPTION_MEAN
    rgb_std: tuple[float, ...] = IMAGENET_INCEPTION_STD

    def __post_init__(self) -> None:
        self.validate()

    @property
    def visual_modalities(self) -> tuple[str, ...]:
        """The visual streams this model has, in canonical order."""
        return tuple(m for m in VISUAL_MODALITIES if m in self.modalities)

    @property
    def has_audio(self) -> bool:
        return "audio" in self.modalities

    @property
    def is_audio_visual(self) -> bool:
        """True when a fusion head combines audio with vision."""
        return self.has_audio and bool(self.visual_modalities)

    @property
    def reads_audio_tokens(self) -> bool:
        """True when the model's batches must carry the cached audio time tokens (an AVT model with audio)."""
        return self.has_audio and self.audio_input == "tokens"

    @property
    def is_token_fusion(self) -> bool:
        """True for the AVT family (token streams fused by bottleneck or full attention)."""
        return self.fusion in TOKEN_FUSION_NAMES

    @property
    def audio_input(self) -> Literal["embedding", "tokens"]:
        """What the model reads of the audio cache: the pooled AST embedding or the token sequence."""
        return "tokens" if self.is_token_fusion else "embedding"

    def validate(self, path: str = "model") -> None:
        """Check value ranges; raise `AvlabelError` naming ``path.field`` on a bad one."""
        self.modalities = tuple(self.modalities)

        def fail(name: str, message: str) -> typing.NoReturn:
            raise AvlabelError(f"{path}.{name}: {message}")

        if not self.modalities or any(m not in MODALITIES for m in self.modalities):
            fail(
                "modalities",
                f"must name at least one of {', '.join(MODALITIES)} (a subset), got {list(self.modalities)}",
            )
        if len(set(self.modalities)) != len(self.modalities):
            fail("modalities", f"{list(self.modalities)} names a modality twice")
        if self.fusion not in FUSION_NAMES + TOKEN_FUSION_NAMES:
            choices = ", ".join(FUSION_NAMES + TOKEN_FUSION_NAMES)
            fail("fusion", f"unknown fusion head {self.fusion!r}; choose one of {choices}")
        if self.imd_mode not in IMD_MODES:
            fail("imd_mode", f"{self.imd_mode!r} must be 'M' (masking) or 'W' (weighting)")
        if not 0.0 <= self.imd_alpha <= 1.0:
            fail("imd_alpha", f"{self.imd_alpha} must lie in [0, 1] (it thresholds a sigmoid)")
        for name in (
            "num_classes",
            "img_size",
            "patch_size",
            "num_frames",
            "embed_dim",
            "depth",
            "num_heads",
            "audio_dim",
            "audio_hidden_dim",
            "audio_tokens",
            "se_reduction",
            "n_bottleneck",
            "contrastive_dim",
        ):
            if getattr(self, name) < 1:
                fail(name, f"{getattr(self, name)} must be a positive integer")
        if self.img_size % self.patch_size:
            fail("img_size", f"{self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            fail("num_heads", f"embed_dim {self.embed_dim} is not divisible by {self.num_heads} heads")
        if not 0 <= self.space_time_blocks <= self.depth:
            fail("space_time_blocks", f"{self.space_time_blocks} must lie in [0, depth={self.depth}]")
        for name in ("drop_path_rate", "attn_drop_rate", "proj_drop_rate", "head_dropout", "drop_pathway_p"):
            if not 0.0 <= getattr(self, name) < 1.0:
                fail(name, f"{getattr(self, name)} must lie in [0, 1)")
        for name in ("rgb_mean", "rgb_std"):
            values = getattr(self, name)
            if len(values) != 3 or not all(math.isfinite(v) for v in values):
                fail(name, f"{list(values)} must be 3 finite numbers (R, G, B)")
        if min(self.rgb_std) <= 0:
            fail("rgb_std", f"{list(self.rgb_std)} must be positive")
        if self.mlp_ratio <= 0 or self.avc_loss_weight < 0:
            fail("mlp_ratio" if self.mlp_ratio <= 0 else "avc_loss_weight", "must be positive")
        if self.is_token_fusion and not 0 <= self.fusion_layer <= self.depth:
            fail("fusion_layer", f"{self.fusion_layer} must lie in [0, depth={self.depth}] (depth: late fusion)")
        self._validate_pretext_heads(fail)

    def _validate_pretext_heads(self, fail: typing.Callable[[str, str], typing.NoReturn]) -> None:
        """Each self-supervised head needs the streams (and the layers) its loss reads."""
        self.pretext_heads = tuple(self.pretext_heads)
        heads = self.pretext_heads
        unknown = [head for head in heads if head not in PRETEXT_HEADS]
        if unknown or len(set(heads)) != len(heads):
            fail("pretext_heads", f"{list(heads)} must name each of {', '.join(PRETEXT_HEADS)} at most once")
        if heads and not self.is_token_fusion:
            fail("pretext_heads", f"self-supervised heads need an AVT token fusion ({', '.join(TOKEN_FUSION_NAMES)})")
        if ("contrastive" in heads or "matching" in heads) and not self.is_audio_visual:
            fail("pretext_heads", "contrastive and matching pair audio with video: modalities need audio and vision")
        if "contrastive" in heads and self.fusion_layer == 0:
            fail(
                "fusion_layer",
                "0 leaves no unimodal layer for the contrastive embeddings (taken before fusion); use >= 1",
            )
        if "matching" in heads and self.fusion_layer == self.depth:
            fail("fusion_layer", f"{self.depth} (late fusion) leaves the matching head no fused representation")
        if "masked_video" in heads and not self.visual_modalities:
            fail("pretext_heads", "masked_video needs a visual stream (rgb or flow)")
        if "masked_audio" in heads and not self.has_audio:
            fail("pretext_heads", "masked_audio needs the audio stream")

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "model") -> ModelConfig:
        """Build a config from a plain dict (a checkpoint's ``asdict`` or a YAML section).

        Read by avlabel's one converter (`avlabel._config`): unknown keys and values of
        the wrong type raise `AvlabelError` naming the dotted path (``model.depth``), so a
        typo in a YAML file is reported, not ignored; missing keys take the defaults.
        """
        values = convert_fields(cls, data, path)
        config = cls.__new__(cls)  # validated once, below, under the caller's path
        for spec in dataclasses.fields(cls):
            default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default  # type: ignore[misc]
            setattr(config, spec.name, values.get(spec.name, default))
        config.validate(path)
        return config

    def to_dict(self) -> dict[str, Any]:
        """``asdict`` with lists for tuples, ready for JSON/YAML and `from_dict`."""
        data = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}


def _imd_b() -> ModelConfig:
    """IMD-B (Table 6): ViT-B/16 streams (L=12, D=768, 12 heads)."""
    return ModelConfig(name="imd_b", pretrained_image="vit_base_patch16_224.augreg_in21k")


def _imd_l() -> ModelConfig:
    """IMD-L (Table 6): ViT-L/16 streams (L=24, D=1024, 16 heads)."""
    return ModelConfig(
        name="imd_l",
        embed_dim=1024,
        depth=24,
        num_heads=16,
        audio_hidden_dim=1024,
        pretrained_image="vit_large_patch16_224.augreg_in21k",
    )


def _timesformer_b() -> ModelConfig:
    """TimeSformer-B reference (divided space-time attention in every block, RGB only).

    The paper's efficiency claim (Sec. 3.2) compares its two space-time blocks against this
    design; both configs count FLOPs the same way in ``avlabel models``.
    """
    return ModelConfig(
        name="timesformer_b",
        modalities=("rgb",),
        space_time_blocks=12,
        pretrained_image="vit_base_patch16_224.augreg_in21k",
    )


def _imd_tiny() -> ModelConfig:
    """A tiny IMD model for tests and smoke runs (seconds on a CPU)."""
    return ModelConfig(
        name="imd_tiny",
        num_classes=10,
        img_size=32,
        patch_size=8,
        num_frames=4,
        embed_dim=64,
        depth=4,
        num_heads=2,
        audio_hidden_dim=64,
    )


def _timesformer_tiny() -> ModelConfig:
    """A tiny TimeSformer-style model (space-time attention in every block) for tests."""
    return dataclasses.replace(_imd_tiny(), name="timesformer_tiny", modalities=("rgb",), space_time_blocks=4)


def _avt_b() -> ModelConfig:
    """AVT-B: RGB + audio tokens fused by MBT's bottleneck (4 tokens from layer 8 of 12), ViT-B/16 video.

    The abstract fixes bottleneck fusion and the objectives; the sizes follow MBT's ViT-B
    configuration and avlabel's IMD-B video stream (two space-time blocks). Every
    self-supervised head is on: the joint stage that training runs by default.
    """
    return ModelConfig(
        name="avt_b",
        modalities=("rgb", "audio"),
        fusion="bottleneck",
        pretext_heads=PRETEXT_HEADS,
        pretrained_image="vit_base_patch16_224.augreg_in21k",
    )


def _avt_tiny() -> ModelConfig:
    """A tiny AVT for tests and smoke runs: imd_tiny's streams, fusion from layer 2 of 4, log-mel tokens."""
    return dataclasses.replace(
        _imd_tiny(),
        name="avt_tiny",
        modalities=("rgb", "audio"),
        fusion="bottleneck",
        fusion_layer=2,
        contrastive_dim=32,
        audio_dim=128,  # the log-mel embedder's tokens: 128 mel bins
        pretext_heads=PRETEXT_HEADS,
    )


# name -> factory; a plain table so every name leads straight to the code that defines it.
_NAMED_CONFIGS = {
    "imd_b": _imd_b,
    "imd_l": _imd_l,
    "timesformer_b": _timesformer_b,
    "avt_b": _avt_b,
    "imd_tiny": _imd_tiny,
    "timesformer_tiny": _timesformer_tiny,
    "avt_tiny": _avt_tiny,
}


def list_models(pattern: str = "*") -> list[str]:
    """Names of the built-in model configs matching a shell-style ``pattern`` (like ``timm.list_models``)."""
    return [name for name in _NAMED_CONFIGS if fnmatch.fnmatch(name, pattern)]


def model_config(name: str, **overrides: Any) -> ModelConfig:
    """The named config with ``overrides`` applied, validated.

    Raises:
        AvlabelError: for an unknown name or override, or an invalid value.
    """
    factory = _NAMED_CONFIGS.get(name)
    if factory is None:
        raise AvlabelError(f"unknown model {name!r}; choose one of {', '.join(_NAMED_CONFIGS)}")
    data = factory().to_dict()
    data.update(overrides)
    return ModelConfig.from_dict(data)


__all__ = [
    "FUSION_NAMES",
    "IMAGENET_INCEPTION_MEAN",
    "IMAGENET_INCEPTION_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODALITIES",
    "PRETEXT_HEADS",
    "TOKEN_FUSION_NAMES",
    "ModelConfig",
    "list_models",
    "model_config",
]
