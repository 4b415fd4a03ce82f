"""examples/synthetic_experiment.py: its variants are valid configs, and its tables are assembled
correctly from evaluated runs (fixture runs written by hand in the files `avlabel eval` writes)."""

from __future__ import annotations

import csv
import importlib.util
import json
import statistics
import sys
from pathlib import Path

import pytest

from avlabel.train.config import load_config

SCRIPT = Path(__file__).parents[1] / "examples" / "synthetic_experiment.py"


@pytest.fixture(scope="module")
def experiment():
    spec = importlib.util.spec_from_file_location("synthetic_experiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.mark.parametrize(
    "name", ["rgb", "audio", "imd_flow", "late_concat", "drop_pathway", "imd_aug_a0.75", "imd_aug_W"]
)
def test_every_variant_is_a_valid_config_and_its_columns_say_what_it_trains(experiment, tmp_path, name):
    path = tmp_path / "seed0.yaml"
    path.write_text(experiment.BASE_CONFIG.format(data=tmp_path, epochs=16, seed=0))
    variant = experiment.VARIANTS[name]
    config = load_config(path, list(variant.overrides))
    settings = experiment._settings(variant)
    assert settings["Modalities"] == "+".join(config.model.modalities)
    fused = "audio" in config.model.modalities and len(config.model.modalities) > 1
    assert settings["Fusion"] == (config.model.fusion if fused else "–")
    if fused and config.model.fusion == "imd":
        assert (float(settings["α"]), settings["M/W"]) == (config.model.imd_alpha, config.model.imd_mode)
    else:
        assert settings["α"] == settings["M/W"] == "–"
    assert settings["Aug. p"] == (f"{config.imd.augment_p:g}" if fused else "–")


def test_quick_mode_runs_a_subset_of_the_variants(experiment):
    assert set(experiment.QUICK) == {"visual", "late_concat", "gmu", "imd"} <= set(experiment.VARIANTS)


# Six test clips: two of each kind of sound. "silent" carries a background without audible audio.
CLIPS = [("a", "own"), ("b", "own"), ("c", "other"), ("d", "other"), ("e", "background"), ("silent", "background")]


def _write_run(
    root: Path, name: str, correct: set[str], relevance: dict[str, tuple[float, float]] | None, top5: float
) -> Path:
    """A run directory as `avlabel eval` leaves it: metrics.json and predictions.csv in eval/test-best."""
    evaluation = root / "runs" / name / "eval" / "test-best"
    evaluation.mkdir(parents=True)
    with open(evaluation / "predictions.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["video_id", "label", "predicted", "probability", "top5", "relevance", "audio_kept", "relevance_target"]
        )
        for video_id, _ in CLIPS:
            score, kept = (relevance or {}).get(video_id, ("", ""))
            writer.writerow([video_id, "x", "x" if video_id in correct else "y", "0.9", "x;y", score, kept, ""])
    metrics = {"top1": len(correct) / len(CLIPS), "top5": top5, "relevance": None}
    if relevance:
        metrics["relevance"] = {"drop_rate": 0.4, "mean_score": 0.5, "vs_relevant": {"roc_auc": 0.75}}
    (evaluation / "metrics.json").write_text(json.dumps(metrics))
    return evaluation.parents[1]


@pytest.fixture
def fixture_runs(tmp_path):
    synth = tmp_path / "synth.json"
    synth.write_text(json.dumps({"clips": [{"video_id": v, "audio_kind": kind} for v, kind in CLIPS]}))
    imd_relevance = {"a": (0.9, 1.0), "b": (0.2, 0.0), "c": (0.6, 0.5), "d": (0.1, 0.0), "e": (0.05, 0.0)}
    runs = {
        "imd": [
            _write_run(tmp_path, "imd-seed0", {"a", "b", "c", "e"}, imd_relevance, 1.0),
            _write_run(tmp_path, "imd-seed1", {"a", "c", "d", "e", "silent"}, imd_relevance, 0.5),
        ],
        "visual": [_write_run(tmp_path, "visual-seed0", {"a", "c"}, None, 1.0)],
    }
    return synth, runs


def test_a_run_is_summarised_per_kind_of_sound(experiment, fixture_runs):
    synth, runs = fixture_runs
    summary = experiment.summarize_run(runs["imd"][0], synth)
    assert summary["top1"] == pytest.approx(4 / 6) and summary["top5"] == 1.0
    assert (summary["dropped"], summary["roc_auc"]) == (0.4, 0.75)
    assert (summary["top1_own"], summary["top1_other"], summary["top1_background"]) == (1.0, 0.5, 0.5)
    # Relevance per kind over clips with audible audio only ("silent" has none).
    assert summary["rev_own"] == pytest.approx(0.55) and summary["rev_background"] == pytest.approx(0.05)
    assert (summary["dropped_own"], summary["dropped_other"], summary["dropped_background"]) == (0.5, 0.75, 1.0)
    # own {0.9, 0.2} vs background {0.05}: every own score is higher; vs other {0.6, 0.1}: 3 of 4 pairs.
    assert summary["roc_auc_own_vs_background"] == 1.0 and summary["roc_auc_own_vs_other"] == 0.75
    visual = experiment.summarize_run(runs["visual"][0], synth)
    assert visual["dropped"] is None and visual["rev_own"] is None and visual["roc_auc_own_vs_other"] is None


def test_tables_show_mean_and_sample_std_over_seeds(experiment, fixture_runs):
    synth, runs = fixture_runs
    summaries = {
        name: [{"seed": seed, **experiment.summarize_run(run, synth)} for seed, run in enumerate(dirs)]
        for name, dirs in runs.items()
    }
    text = experiment.results_tables(summaries)
    main, relevance = text.split("What the relevance network does")
    rows = {
        line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ")
        for line in main.splitlines()
        if line.startswith("| ")
    }
    imd, visual = rows["IMD"], rows["RGB + flow (vision only)"]
    header = rows["Variant"]
    column = {name: index for index, name in enumerate(header)}
    top1 = [100 * 4 / 6, 100 * 5 / 6]
    assert imd[column["Top-1"]] == f"{statistics.mean(top1):.1f} ± {statistics.stdev(top1):.1f}"
    assert imd[column["Top-5"]] == "75.0 ± 35.4"
    assert imd[column["Relevance ROC-AUC"]] == "0.75 ± 0.00"
    assert imd[column["Top-1, own sound"]] == "75.0 ± 35.4"  # 100% and 50%
    assert [imd[column[key]] for key in ("Modalities", "Fusion", "α", "M/W", "Aug. p")] == [
        "rgb+flow+audio",
        "imd",
        "0.25",
        "M",
        "0",
    ]
    assert visual[column["Top-1"]] == "33.3"  # one seed: no spread
    # Paired by seed: only seed 0 has a vision-only run (IMD 4/6 against 2/6).
    assert imd[column["Top-1 − vision only, paired"]] == "33.3"
    assert visual[column["Top-1 − vision only, paired"]] == "–"
    assert [visual[column[key]] for key in ("Fusion", "Audio dropped", "Relevance ROC-AUC")] == ["–", "–", "–"]
    # The relevance table lists only variants with a relevance network.
    relevance_rows = [line for line in relevance.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0].lstrip("| ") for row in relevance_rows[1:]] == ["IMD"]  # after the header


def test_retrieval_and_matching_columns_appear_for_runs_that_have_them(experiment, fixture_runs):
    synth, runs = fixture_runs
    for seed, run in enumerate(runs["imd"]):  # as if the model also had AVT's heads
        path = run / "eval" / "test-best" / "metrics.json"
        metrics = json.loads(path.read_text())
        recall = {"r1": 0.02 * (seed + 1), "r5": 0.1}
        metrics["retrieval"] = {"video_to_audio": recall, "audio_to_video": recall}
        metrics["matching"] = {"accuracy": 0.5, "roc_auc": 0.6 + 0.1 * seed}
        path.write_text(json.dumps(metrics))
    summaries = {
        name: [{"seed": seed, **experiment.summarize_run(run, synth)} for seed, run in enumerate(dirs)]
        for name, dirs in runs.items()
    }
    main = experiment.results_tables(summaries).split("What the relevance network does")[0]
    rows = [line.strip("| ").split(" | ") for line in main.splitlines() if line.startswith("| ")]
    header, imd = rows[0], next(row for row in rows if row[0] == "IMD")
    cells = dict(zip(header, imd))
    assert cells["R@1 video→audio"] == "3.0 ± 1.4" and cells["R@5 audio→video"] == "10.0 ± 0.0"
    assert cells["Matching accuracy"] == "50.0 ± 0.0" and cells["Matching ROC-AUC"] == "0.65 ± 0.07"
    visual = next(row for row in rows if row[0] == "RGB + flow (vision only)")
    assert dict(zip(header, visual))["Matching ROC-AUC"] == "–"


def test_avt_variants_train_every_loss_but_the_one_they_leave_out(tmp_path):
    previous = sys.modules.get("synthetic_experiment")  # the script registers its own copy under this name
    spec = importlib.util.spec_from_file_location("avt_experiment", SCRIPT.with_name("avt_experiment.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        path = tmp_path / "seed0.yaml"
        path.write_text(module.experiment.BASE_CONFIG.format(data=tmp_path, epochs=16, seed=0))
        losses = ("contrastive", "matching", "masked_video", "masked_audio", "masked_segment")
        for name, variant in module.VARIANTS.items():
            config = load_config(path, list(variant.overrides))
            weights = {loss: getattr(config.avt, f"{loss}_weight") for loss in losses}
            if not name.startswith("avt"):
                assert set(weights.values()) == {0.0} and config.model.fusion != "bottleneck"
                continue
            assert config.model.fusion == "bottleneck" and config.model.modalities == ("rgb", "flow", "audio")
            assert (config.model.depth, config.model.embed_dim) == (2, 32)  # the IMD variants' size
            off = set(losses) if name == "avt_classification" else {name.removeprefix("avt_no_")} & set(losses)
            assert {loss for loss, weight in weights.items() if weight == 0} == off, name
            assert module.experiment._settings(variant)["Fusion"] == "bottleneck"
    finally:
        if previous is None:
            sys.modules.pop("synthetic_experiment", None)
        else:
            sys.modules["synthetic_experiment"] = previous
