"""Run-comparison tables from fixture run directories (config.yaml written by the real config code)."""

from __future__ import annotations

import json

import pytest

from avlabel.errors import AvlabelError
from avlabel.evaluate.report import (
    eval_dir,
    markdown_table,
    summarize_run,
    write_report,
)
from tests.evaluate._fixtures import make_run


def _rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def test_table_columns_follow_the_run_settings(tmp_path):
    imd = make_run(
        tmp_path,
        "imd",
        evaluation={"top1": 0.828, "top5": 0.957, "mean_class_accuracy": 0.8, "relevance": {"drop_rate": 0.125}},
    )
    gmu = make_run(
        tmp_path,
        "gmu",
        fusion="gmu",
        evaluation={"top1": 0.809, "top5": 0.948, "mean_class_accuracy": 0.79, "relevance": None},
    )
    visual = make_run(
        tmp_path,
        "visual",
        modalities=("rgb", "flow"),
        val_records=[{"top1": 0.5, "top5": 0.9}, {"top1": 0.7, "top5": 0.95}],
    )
    table = markdown_table([summarize_run(d) for d in (imd, gmu, visual)])
    header = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
    assert header == [
        "Run",
        "Model",
        "Fusion",
        "Modalities",
        "k–Y_a",
        "α",
        "M/W",
        "Aug. p",
        "Top-1 (%)",
        "Top-5 (%)",
        "Mean class (%)",
        "Drop (%)",
        "Source",
    ]
    rows = _rows(table)
    assert rows[0] == [
        "imd",
        "imd_tiny",
        "imd",
        "rgb+flow+audio",
        "10–20",
        "0.25",
        "M",
        "0.5",
        "82.8",
        "95.7",
        "80.0",
        "12.5",
        "test 3x4 (best)",
    ]
    # Non-IMD heads have no alpha/mode/targets and no drop rate.
    assert rows[1][2:8] == ["gmu", "rgb+flow+audio", "–", "–", "–", "0.5"] and rows[1][11] == "–"
    # A run never evaluated shows its best validation epoch, and says so.
    assert rows[2][2:8] == ["–", "rgb+flow", "–", "–", "–", "–"]
    assert rows[2][8:10] == ["70.0", "95.0"] and rows[2][12] == "val 1 view (epoch 1)"


def test_grouping_merges_seeds_into_mean_and_std(tmp_path):
    runs = [
        make_run(
            tmp_path, f"imd-s{seed}", seed=seed, evaluation={"top1": top1, "top5": 0.9, "relevance": {"drop_rate": 0.2}}
        )
        for seed, top1 in [(0, 0.70), (1, 0.80), (2, 0.75)]
    ]
    runs.append(make_run(tmp_path, "imd-w", mode="W", evaluation={"top1": 0.6, "top5": 0.9}))
    output = tmp_path / "out" / "report.md"
    table = write_report(runs, output=output, group=True)
    rows = _rows(table)
    assert len(rows) == 2
    assert rows[0][0] == "imd-s0, imd-s1, imd-s2"
    assert rows[0][8] == "75.0 ± 5.0"  # sample std of 70, 80, 75
    assert rows[0][-2:] == ["3", "test 3x4 (seeds 0,1,2)"]
    assert rows[1][6] == "W" and rows[1][8] == "60.0"
    assert output.read_text() == table
    document = json.loads(output.with_suffix(".json").read_text())
    assert len(document["runs"]) == 4
    assert document["groups"][0]["top1"] == {"mean": pytest.approx(0.75), "std": pytest.approx(0.05), "n": 3}


def test_val_and_test_numbers_are_never_grouped_together(tmp_path):
    tested = make_run(tmp_path, "a", seed=0, evaluation={"top1": 0.8})
    validated = make_run(tmp_path, "b", seed=1, val_records=[{"top1": 0.6}])
    assert len(_rows(markdown_table([summarize_run(tested), summarize_run(validated)], group=True))) == 2


def test_bad_run_directories(tmp_path):
    with pytest.raises(AvlabelError, match="no config.yaml"):
        summarize_run(tmp_path)
    run = make_run(tmp_path, "broken", evaluation={"top1": 0.5})
    (eval_dir(run, "test", "best") / "metrics.json").write_text("{not json")
    with pytest.raises(AvlabelError, match="not valid JSON"):
        summarize_run(run)
    with pytest.raises(AvlabelError, match="no run directories"):
        write_report([])
