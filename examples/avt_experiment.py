"""AVT on the synthetic benchmark: with and without each self-supervised loss, against IMD and late concat.

The protocol, data, model sizes, schedule and tables are those of
``examples/synthetic_experiment.py`` (imported, not copied): each seed builds its own
``avlabel synth`` benchmark (here with the audio time tokens AVT reads in its audio cache), every
variant trains on it through ``avlabel train`` and is evaluated on the test split through
``avlabel eval`` with 3 x 4 views. The AVT variants are ``avt_tiny`` cut to the IMD variants'
size (depth 2, width 32, RGB + flow + audio) with the bottleneck from layer 1, and the table adds
each run's retrieval recall@1 and matching accuracy::

    python examples/avt_experiment.py --out runs/avt_synthetic --jobs 2           # 3 seeds, every variant
    python examples/avt_experiment.py --out runs/avt_synthetic --only avt visual  # a subset
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "synthetic_experiment", Path(__file__).with_name("synthetic_experiment.py")
)
experiment = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = experiment  # dataclasses look their module up there
_SPEC.loader.exec_module(experiment)
Variant = experiment.Variant

# avt_tiny at the IMD variants' size: the base config's depth 2, width 32 and 2 heads, the three
# streams, the bottleneck from layer 1 (layer 0 unimodal, for the contrastive embeddings), and
# masked segments of 4 tokens (0.4 s: the benchmark's clips are 2 s, about 20 valid tokens).
_AVT = (
    "model.name=avt_tiny",
    "model.fusion=bottleneck",
    "model.modalities=[rgb,flow,audio]",
    "model.fusion_layer=1",
    "imd.augment_p=0",
    "avt.segment_length=4",
)
_LOSSES = ("contrastive", "matching", "masked_video", "masked_audio", "masked_segment")
_NAMES = {
    "contrastive": "contrastive",
    "matching": "matching",
    "masked_video": "masked video",
    "masked_audio": "masked audio",
    "masked_segment": "masked segments",
}
VARIANTS: dict[str, Variant] = {
    "visual": experiment.VARIANTS["visual"],
    "late_concat": experiment.VARIANTS["late_concat"],
    "imd_aug": experiment.VARIANTS["imd_aug"],
    "avt": Variant("AVT, every loss", "AVT", _AVT),
    **{
        f"avt_no_{loss}": Variant(f"AVT without {_NAMES[loss]}", "AVT", (*_AVT, f"avt.{loss}_weight=0"))
        for loss in _LOSSES
    },
    "avt_classification": Variant(
        "AVT, classification only (MBT)", "AVT", (*_AVT, *(f"avt.{loss}_weight=0" for loss in _LOSSES))
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/avt_synthetic"), help="experiment folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--views", default="3x4", help="test views, crops x clips")
    parser.add_argument("--jobs", type=int, default=2, help="training runs in parallel (one CPU thread each)")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="run only these variants")
    args = parser.parse_args()
    variants = {name: VARIANTS[name] for name in args.only or VARIANTS}
    title = "AVT on the synthetic benchmark"
    print(experiment.run_experiment(args.out, args.seeds, variants, args.epochs, args.views, args.jobs, title, True))


if __name__ == "__main__":
    main()
