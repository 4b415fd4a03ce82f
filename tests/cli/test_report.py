"""`avlabel report`: the table on stdout, files written, one-line errors."""

from __future__ import annotations

from click.testing import CliRunner

from avlabel.cli import cli
from tests.evaluate._fixtures import make_run


def test_report_prints_and_writes_the_table(tmp_path):
    runs = [str(make_run(tmp_path, f"r{s}", seed=s, evaluation={"top1": 0.5 + 0.1 * s, "top5": 1.0})) for s in range(2)]
    output = tmp_path / "report.md"
    result = CliRunner().invoke(cli, ["report", *runs, "--group", "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert "| r0, r1 | imd_tiny | imd |" in result.stdout
    assert "55.0 ± 7.1" in result.stdout
    assert output.read_text() in result.stdout and output.with_suffix(".json").is_file()


def test_report_on_a_directory_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and "no config.yaml" in result.output
    assert len(result.output.strip().splitlines()) == 1
