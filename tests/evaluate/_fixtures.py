"""Fixture run directories shared by the evaluation and CLI tests."""

from __future__ import annotations

import json

from avlabel.evaluate.report import eval_dir
from avlabel.train.config import config_from_dict, dump_config


def make_run(root, name, *, fusion="imd", modalities=("rgb", "flow", "audio"), alpha=0.25, mode="M", augment_p=0.5,
             seed=0, evaluation=None, val_records=(), k=10, ya=20):
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
