"""Fixture run directories shared by the evaluation and CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

from avlabel.evaluate.report import eval_dir
from avlabel.train.config import config_from_dict, dump_config


def make_run(
    root,
    name,
    *,
    fusion="imd",
    modalities=("rgb", "flow", "audio"),
    alpha=0.25,
    mode="M",
    augment_p=0.5,
    seed=0,
    evaluation=None,
    val_records=(),
    k=10,
    ya=20,
):
    """A run directory with a real config.yaml, optional eval metrics.json and metrics.jsonl."""
    run_dir = root / name
    run_dir.mkdir()
    raw = {
        "data": {"manifest": "synth/manifest.csv", "label_set": "synth/classes.txt"},
        "audio": {"cache": "synth/audio", "k": k, "ya": ya},
        "model": {"name": "imd_tiny", "fusion": fusion, "modalities": list(modalities)},
        "imd": {"alpha": alpha, "mode": mode, "augment_p": augment_p},
        "runtime": {"seed": seed},
    }
    (run_dir / "config.yaml").write_text(dump_config(config_from_dict(raw)))
    lines = [json.dumps({"kind": "train", "epoch": 0, "step": 1, "loss": 2.0})]
    lines += [json.dumps({"kind": "val", "epoch": e, "step": e, **r}) for e, r in enumerate(val_records)]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if evaluation is not None:
        target = eval_dir(run_dir, "test", "best")
        target.mkdir(parents=True)
        (target / "metrics.json").write_text(json.dumps({"views": "3x4", **evaluation}))
    return run_dir


def invoke(args: list[str]) -> str:
    """Run an avlabel command in-process (as a user would from the shell); fail loudly on error."""
    from click.testing import CliRunner

    from avlabel.cli import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def shared_tiny_run(tmp_path_factory) -> dict:
    """:func:`build_tiny_run`, built once per test session and shared by the modules that use it.

    The session's base temporary folder is the same for every module, so a finished build (its
    marker written last) is reused instead of generating and embedding the benchmark again.
    """
    root = tmp_path_factory.getbasetemp() / "avlabel-tiny-eval-run"
    marker = root / "paths.json"
    if not marker.is_file():
        if root.exists():  # an earlier attempt in this session failed half-way
            import shutil

            shutil.rmtree(root)
        root.mkdir()
        paths = build_tiny_run(root)
        marker.write_text(
            json.dumps({key: str(value) if not isinstance(value, list) else value for key, value in paths.items()})
        )
    loaded = json.loads(marker.read_text())
    return {key: value if isinstance(value, list) else Path(value) for key, value in loaded.items()}


def build_ast_run(tiny: dict, root, tokens: bool = False) -> Path:
    """A run over the shared tiny benchmark whose audio cache was built by a (tiny, random) AST.

    The AST is saved with ``save_pretrained`` and loaded back through ``avlabel targets --ast
    DIR``, the path a user's checkpoint takes; the run's model reads its embedding width. With
    ``tokens`` the cache holds AST's time tokens (``--tokens``) and the model reads them (an
    ``avt_tiny``).
    """
    from avlabel.labels import load_label_set
    from tests.audio._media import save_tiny_ast

    ast_dir = save_tiny_ast(root / "ast", load_label_set("audioset").labels)
    audio = root / "audio"
    invoke(
        [
            "targets",
            "--manifest",
            str(tiny["manifest"]),
            "--savld",
            str(tiny["data"] / "savld.json"),
            "--ast",
            str(ast_dir),
            "--tags",
            str(tiny["tags"]),
            "--embedder",
            "ast",
            "--k",
            "5",
            "--workers",
            "0",
            "--tokens" if tokens else "--no-tokens",
            "-o",
            str(audio),
        ]
    )
    return _save_fresh_run(
        root / "run",
        tiny["manifest"],
        tiny["data"] / "classes.txt",
        audio,
        list(tiny["classes"]),
        tokens=tokens,
    )


def _save_fresh_run(
    run_dir: Path,
    manifest: Path,
    labels: Path,
    audio: Path,
    classes: list[str],
    modalities=("rgb", "flow", "audio"),
    tokens: bool = False,
) -> Path:
    """config.yaml plus a freshly initialised imd_tiny (``tokens``: avt_tiny, which reads audio
    tokens) saved by the training engine's checkpoint writer."""
    import torch

    from avlabel.audio.cache import AudioCache
    from avlabel.models import build_model, model_config
    from avlabel.train.checkpoint import save_checkpoint

    name = "avt_tiny" if tokens else "imd_tiny"
    raw = {
        "data": {
            "manifest": str(manifest),
            "label_set": str(labels),
            "frames": 4,
            "stride": 4,
            "size": 32,
            "workers": 0,
        },
        "audio": {"cache": str(audio), "k": 5},
        "model": {"name": name, "modalities": list(modalities), "pretrained": None},
        "runtime": {"device": "cpu"},
    }
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(dump_config(config_from_dict(raw)))
    torch.manual_seed(0)
    cache = AudioCache(audio)
    width = {"audio_dim": cache.dim}
    if tokens and cache.has_tokens:  # a token cache: the model reads tokens of this width
        width = {"audio_dim": cache.header["tokens"]["dim"], "audio_tokens": cache.header["tokens"]["count"]}
    config = model_config(
        name, num_classes=len(classes), num_frames=4, img_size=32, modalities=tuple(modalities), **width
    )
    model = build_model(config)
    state = {"model_config": config.to_dict(), "classes": classes, "label_set": labels.stem, "epoch": 0, "step": 0}
    save_checkpoint(run_dir, "best", model, torch.optim.SGD(model.parameters(), lr=0.01), None, state)
    return run_dir


def tiny_synth_args(out: Path, seed: int = 0) -> list[str]:
    """`avlabel synth` arguments of the tiny benchmark (3 classes x 5 clips of 1 s at 32 px);
    another ``seed`` draws other files under the same video ids."""
    sizes = ["--classes", "3", "--per-class", "5", "--size", "32", "--duration", "1.0", "--workers", "1"]
    return ["synth", "--out", str(out), *sizes, "--seed", str(seed)]


def build_tiny_run(root, modalities=("rgb", "flow", "audio")):
    """A tiny synthetic benchmark, its audio cache and targets, and a freshly initialised run.

    Uses the real commands end to end (`avlabel synth`, `avlabel savld`, `avlabel targets` with
    the log-mel embedder and the benchmark's tags) and saves an `imd_tiny` model through the
    training engine's checkpoint writer with a real config.yaml, so `load_run` sees exactly what
    `avlabel train` would leave behind. Returns a dict of paths.
    """
    data = root / "synth"
    invoke(tiny_synth_args(data))
    classes = (data / "classes.txt").read_text().splitlines()  # the label file `avlabel synth` writes
    invoke(
        [
            "savld",
            "--video",
            str(data / "classes.txt"),
            "--audio",
            "audioset",
            "-k",
            "5",
            "-o",
            str(data / "savld.json"),
        ]
    )
    invoke(
        [
            "targets",
            "--manifest",
            str(data / "manifest.csv"),
            "--savld",
            str(data / "savld.json"),
            "--tags",
            str(data / "audio_tags.csv"),
            "--embedder",
            "logmel",
            "--k",
            "5",
            "--windows",
            "2",
            "--workers",
            "0",
            "-o",
            str(data / "audio"),
        ]
    )
    run_dir = _save_fresh_run(
        root / "run", data / "manifest.csv", data / "classes.txt", data / "audio", classes, modalities
    )
    return {
        "data": data,
        "manifest": data / "manifest.csv",
        "run": run_dir,
        "classes": classes,
        "audio": data / "audio",
        "tags": data / "audio_tags.csv",
    }
