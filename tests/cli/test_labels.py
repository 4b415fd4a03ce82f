"""`avlabel labels`: the table of shipped sets and one set's labels, pipe-friendly."""

from __future__ import annotations

from click.testing import CliRunner

from avlabel.cli import cli


def test_lists_shipped_sets_with_sizes():
    result = CliRunner().invoke(cli, ["labels"])
    assert result.exit_code == 0
    for name, size in (
        ("audioset", "527"),
        ("kinetics400", "400"),
        ("ucf101", "101"),
        ("vggsound", "309"),
        ("esc50", "50"),
    ):
        assert name in result.stdout and size in result.stdout


def test_prints_one_set_as_index_tab_label_tab_id():
    result = CliRunner().invoke(cli, ["labels", "audioset"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 527
    assert lines[0] == "0\tSpeech\t/m/09x0r"
    assert lines[137] == "137\tMusic\t/m/04rlf"


def test_prints_ucf_in_classind_order_and_user_files(tmp_path):
    lines = CliRunner().invoke(cli, ["labels", "ucf101"]).stdout.splitlines()
    assert lines[34:36] == ["34\tHammering", "35\tHammerThrow"]
    path = tmp_path / "mine.json"
    path.write_text('["a", "b"]', encoding="utf-8")
    assert CliRunner().invoke(cli, ["labels", str(path)]).stdout == "0\ta\n1\tb\n"


def test_unknown_set_exits_2():
    result = CliRunner().invoke(cli, ["labels", "kinetics-401"])
    assert result.exit_code == 2
    assert "unknown label set 'kinetics-401'" in result.stderr
