"""The frozen Audio Spectrogram Transformer (paper section 3.3): AudioSet tags and clip embeddings.

The paper keeps AST frozen and takes two things from it: its multi-label AudioSet predictions
(compared with the SAVLD to build relevance targets, section 4.2.3) and its class embedding (fed to
the learnable audio bottleneck). AST has two class tokens ([cls] and distillation); its authors
average them for embeddings, which is what transformers' ``ASTModel`` returns as
``pooler_output`` and what the classifier head consumes -- so one forward pass gives both. AVT
(issue 12) also reads AST's patch tokens, pooled to time tokens (`avlabel.audio.tokens`), from
that same forward pass.

Checkpoints load through transformers' ``ASTForAudioClassification`` from a hub id (default:
the AudioSet-finetuned AST-base, mAP 0.459) or a local directory written by ``save_pretrained``;
the features it expects come from the checkpoint's ``preprocessor_config.json`` when present.
Its ``id2label`` must list the audio label set of the SAVLD in the same order, otherwise every
target would silently compare the wrong classes: `check_label_order` turns that into an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path

from avlabel._io import quiet_torch_loading
from avlabel.audio.embedders import AudioEmbedding
from avlabel.audio.features import AstFilterbank, FilterbankConfig
from avlabel.audio.tokens import TokenGrid
from avlabel.errors import AvlabelError, reading

DEFAULT_AST = "MIT/ast-finetuned-audioset-10-10-0.4593"


class AstTagger:
    """A frozen AST in eval mode: batched, gradient-free, bf16 autocast on CUDA.

    Args:
        model: a transformers ``ASTForAudioClassification`` (moved to ``device`` and frozen here).
        filterbank: the features this checkpoint expects.
        source: the hub id or directory it came from (recorded in cache provenance).
        device: torch device to run on.

    Attributes:
        labels: class names in output order (the checkpoint's ``id2label``).
        dim: embedding size (768 for AST-base).
        token_grid: where its time tokens lie (AST's patch size and time stride; 101 tokens for AST-base).
        token_dim: width of a time token (= ``dim``).
        fingerprint: sha256 of the configuration and classifier weights; tells caches built by
            different checkpoints apart even when they were loaded from the same path.
    """

    name = "ast"

    def __init__(self, model, filterbank: AstFilterbank, source: str, device="cpu"):
        import torch

        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.filterbank = filterbank
        self.source = source
        config = model.config
        self.labels = tuple(config.id2label[index] for index in range(config.num_labels))
        self.dim = self.token_dim = int(config.hidden_size)
        self.token_grid = TokenGrid(config.patch_size, config.time_stride, config.max_length)
        self._frequency_rows = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
        self.fingerprint = _fingerprint(model)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str] = DEFAULT_AST, device="cpu") -> AstTagger:
        """Load a checkpoint from a hub id or a local directory (see `load_ast`)."""
        model, filterbank = load_ast(name_or_path)
        return cls(model, filterbank, str(name_or_path), device)

    @property
    def identity(self) -> dict:
        """What the cache records to refuse mixing rows from different embedders."""
        return {
            "name": self.name,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "dim": self.dim,
            "filterbank": self.filterbank.config.to_dict(),
        }

    def embed(self, features, num_frames=None, tokens: bool = False) -> AudioEmbedding:
        """Embeddings, AudioSet probabilities and (if asked) time tokens of a batch of filterbank features.

        Args:
            features: ``(B, max_length, num_mel_bins)`` normalised filterbanks.
            num_frames: unused (AST attends to its zero padding, as in its training).
            tokens: also return the time tokens: the last hidden state without the two class
                tokens, averaged over the frequency rows of AST's patch grid (`avlabel.audio.tokens`).

        Returns:
            `AudioEmbedding`, float32 on the model's device: ``(B, dim)`` mean of the two class
            tokens, ``(B, num_labels)`` sigmoid probabilities, and ``(B, token_grid.count, dim)``
            tokens or None.
        """
        import torch

        features = features.to(self.device, non_blocking=True)
        time_tokens = None
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            output = self.model.audio_spectrogram_transformer(features)
            logits = self.model.classifier(output.pooler_output)  # (B, num_labels)
            if tokens:
                # AST's patch embedding flattens its (frequency rows, time columns) conv output row by row.
                patches = output.last_hidden_state[:, 2:].unflatten(1, (self._frequency_rows, self.token_grid.count))
                time_tokens = patches.float().mean(dim=1)  # (B, time columns, D)
        return AudioEmbedding(output.pooler_output.float(), torch.sigmoid(logits.float()), time_tokens)

    def tag(self, waveforms, lengths) -> AudioEmbedding:
        """`embed` of raw ``(B, N)`` waveforms with ``(B,)`` valid lengths (16 kHz mono), without tokens."""
        import torch

        waveforms = torch.as_tensor(waveforms, dtype=torch.float32).to(self.device)
        features, num_frames = self.filterbank(waveforms, torch.as_tensor(lengths))
        return self.embed(features, num_frames)


def tag_file(
    tagger: AstTagger, path: str | os.PathLike[str], top: int = 10, start: float | None = None, end: float | None = None
):
    """Top AudioSet labels of one file's (centred, 10 s) audio window: what ``avlabel tag`` prints.

    Returns:
        ``(status, [(class index, probability), ...])`` best first; the list is empty unless
        ``status`` is `AudioStatus.OK`.
    """
    import torch

    from avlabel.audio.decode import AudioStatus, load_windows

    windows = load_windows(path, start, end, num_windows=1)
    status = AudioStatus(int(windows.status[0]))
    if status != AudioStatus.OK:
        return status, []
    probs = tagger.tag(windows.waveforms, windows.lengths).probs
    values, indices = torch.topk(probs[0].cpu(), k=min(top, probs.shape[1]))
    return status, [(int(index), float(value)) for index, value in zip(indices, values)]


def load_ast(name_or_path: str | os.PathLike[str] = DEFAULT_AST):
    """Load ``ASTForAudioClassification`` and its filterbank definition.

    Args:
        name_or_path: a Hugging Face hub id, or a directory holding ``config.json`` and the
            weights (``model.safetensors``), optionally ``preprocessor_config.json``.

    Returns:
        ``(model, AstFilterbank)``.

    Raises:
        AvlabelError: missing directory, not an AST checkpoint, hub unreachable (the message says
            how to pass a local directory instead), or a filterbank that does not fit the model.
    """
    from transformers import ASTFeatureExtractor, ASTForAudioClassification

    with _quiet_transformers():
        model = _from_pretrained(ASTForAudioClassification, name_or_path, what="AST checkpoint")
    try:
        with warnings.catch_warnings():  # the empty-mel-filter warning, see AstFilterbank._tables
            warnings.simplefilter("ignore", UserWarning)
            extractor = _from_pretrained(ASTFeatureExtractor, name_or_path, what="AST feature extractor")
        filterbank_config = FilterbankConfig.from_extractor(extractor)
    except AvlabelError:
        # Checkpoints saved without a preprocessor_config.json: AST's AudioSet recipe, sized to the model.
        filterbank_config = FilterbankConfig(num_mel_bins=model.config.num_mel_bins, max_length=model.config.max_length)
    if (filterbank_config.num_mel_bins, filterbank_config.max_length) != (
        model.config.num_mel_bins,
        model.config.max_length,
    ):
        raise AvlabelError(
            f"{name_or_path}: preprocessor_config.json makes {filterbank_config.max_length}x{filterbank_config.num_mel_bins} "
            f"filterbanks but the model expects {model.config.max_length}x{model.config.num_mel_bins}; fix one of the two files"
        )
    return model, AstFilterbank(filterbank_config)


def save_random_ast(directory: str | os.PathLike[str], labels: Sequence[str], seed: int = 0, **config) -> Path:
    """Save a randomly initialised AST the way real checkpoints are saved, for benchmarks and tests.

    Writes ``config.json`` (``id2label`` = ``labels``, in order), ``model.safetensors`` and
    ``preprocessor_config.json`` with ``save_pretrained``, so `load_ast` and
    ``avlabel targets --ast DIR`` read it exactly as a downloaded checkpoint. ``config`` overrides
    transformers' ``ASTConfig`` defaults (which are AST-base: the compute of the AudioSet model).
    """
    import torch
    from transformers import ASTConfig, ASTForAudioClassification

    labels = list(labels)
    ast_config = ASTConfig(
        **config,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
    )
    torch.manual_seed(seed)
    ASTForAudioClassification(ast_config).eval().save_pretrained(directory)
    FilterbankConfig(
        num_mel_bins=ast_config.num_mel_bins, max_length=ast_config.max_length
    ).to_extractor().save_pretrained(directory)
    return Path(directory)


def _from_pretrained(cls, name_or_path: str | os.PathLike[str], what: str):
    """``cls.from_pretrained`` with local directories, the local hub cache, then the hub, in that order."""
    source = str(name_or_path)
    path = Path(source).expanduser()
    extra = {"attn_implementation": "sdpa"} if what == "AST checkpoint" else {}
    if path.is_dir():
        _check_model_type(path)
        # A pickled pytorch_model.bin is loaded weights-only by transformers; a refused one is one line.
        with (
            reading(f"{what} {path}", "pass a directory written by save_pretrained (model.safetensors)"),
            quiet_torch_loading(),
        ):
            return cls.from_pretrained(path, local_files_only=True, **extra)
    if path.exists() or source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise AvlabelError(
            f"{what} directory not found: {source}; pass an existing directory or a hub id such as {DEFAULT_AST}"
        )
    try:
        with quiet_torch_loading():
            return cls.from_pretrained(source, local_files_only=True, **extra)
    except OSError:
        pass  # not in the local hub cache: try the hub itself
    except pickle.UnpicklingError:  # re-raised inside reading(): the one refusal message for every pickle
        with reading(
            f"{what} {source!r} (local hub cache)", "delete it from the hub cache and download a safetensors copy"
        ):
            raise
    try:
        with quiet_torch_loading():
            return cls.from_pretrained(source, **extra)
    except (OSError, ValueError, pickle.UnpicklingError) as error:
        raise AvlabelError(
            f"could not load the {what} {source!r} from the Hugging Face hub ({_first_line(error)}); on a machine without "
            f"internet access download it elsewhere (huggingface-cli download {source} --local-dir DIR), copy DIR over "
            "and pass the local directory (--ast DIR)"
        ) from None


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' weight-loading progress bar (a second bar under ours), then restore it."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def _check_model_type(path: Path) -> None:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise AvlabelError(
            f"{path} has no config.json; pass a directory written by save_pretrained of an AST checkpoint"
        )
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise AvlabelError(f"{config_file} is not valid JSON; re-save the checkpoint with save_pretrained") from None
    if model_type != "audio-spectrogram-transformer":
        raise AvlabelError(
            f"{path} holds a {model_type!r} model, not an Audio Spectrogram Transformer; pass an AST checkpoint"
        )


def check_label_order(found: Sequence[str], expected, source: str) -> None:
    """Refuse a tagger whose class names or order differ from ``expected`` (a LabelSet).

    Names are compared ignoring case and runs of whitespace. Raises `AvlabelError` naming
    the first disagreement and the fix.
    """
    found_keys = [_label_key(label) for label in found]
    expected_keys = [_label_key(label) for label in expected.labels]
    if found_keys == expected_keys:
        return
    if sorted(found_keys) == sorted(expected_keys):
        first = next(i for i, (a, b) in enumerate(zip(found_keys, expected_keys)) if a != b)
        raise AvlabelError(
            f"{source} lists the {len(found)} labels of audio label set '{expected.name}' in a different order (class {first} "
            f"is {found[first]!r} there but {expected.labels[first]!r} here); its outputs would be matched to the wrong "
            "labels — use a checkpoint with the standard AudioSet order or rebuild the SAVLD with its label file"
        )
    missing = [label for label, key in zip(expected.labels, expected_keys) if key not in set(found_keys)]
    raise AvlabelError(
        f"{source} predicts {len(found)} labels but audio label set '{expected.name}' has {len(expected.labels)}"
        + (f" (e.g. {missing[0]!r} is not among them)" if missing else "")
        + "; use an AudioSet-finetuned AST or build the SAVLD for this checkpoint's labels"
    )


def _label_key(label: str) -> str:
    return " ".join(label.split()).casefold()


def _fingerprint(model) -> str:
    # Private keys (_name_or_path, ...) and the library version say where a model was loaded from, not what it is.
    config = {
        key: value
        for key, value in model.config.to_dict().items()
        if not key.startswith("_") and key != "transformers_version"
    }
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for tensor in (model.classifier.dense.weight, model.classifier.dense.bias):
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
