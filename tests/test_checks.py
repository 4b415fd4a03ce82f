"""The shared checks (avlabel._checks) and the one translation of reading errors (avlabel.errors.reading)."""

from __future__ import annotations

import json
import os
import pickle
import warnings

import pytest

from avlabel._checks import check_failures, check_input_file, check_output_dir, check_output_file
from avlabel.errors import AvlabelError, AvlabelWarning, reading


def test_output_paths_are_checked_with_a_real_write_and_leave_nothing(tmp_path):
    assert check_output_file(tmp_path / "new" / "deeper" / "out.json", "-o") == tmp_path / "new" / "deeper" / "out.json"
    assert check_output_dir(tmp_path / "run", "--out") == tmp_path / "run"
    assert list(tmp_path.iterdir()) == []  # neither the folders nor the probe file were left behind
    (tmp_path / "file").write_text("x")
    with pytest.raises(AvlabelError, match=r"-o .*file/out.json: .*file is a file, so no folder can be made under it"):
        check_output_file(tmp_path / "file" / "out.json", "-o")
    with pytest.raises(AvlabelError, match="--out .*file is a file, not a folder"):
        check_output_dir(tmp_path / "file", "--out")
    with pytest.raises(AvlabelError, match=r"-o .* is a folder; pass a file name inside it"):
        check_output_file(tmp_path, "-o")


@pytest.mark.skipif(os.geteuid() == 0 and not os.path.isdir("/sys"), reason="needs a folder root cannot write in")
def test_an_unwritable_folder_is_found_before_any_work(tmp_path):
    if os.geteuid() == 0:
        folder = "/sys"  # sysfs refuses new files even to root, who bypasses permission bits
    else:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
    with pytest.raises(AvlabelError, match=r"cannot write in .* \(Permission denied\); choose another path"):
        check_output_dir(os.path.join(folder, "out"), "--out")


def test_input_files(tmp_path):
    with pytest.raises(AvlabelError, match="video not found: .*; pass a video"):
        check_input_file(tmp_path / "v.mp4", "video", "pass a video")
    with pytest.raises(AvlabelError, match="video .* is a folder, not a file; pass a video"):
        check_input_file(tmp_path, "video", "pass a video")


def test_all_failed_is_an_error_many_failed_a_warning_few_nothing():
    failed = [("a", "cannot open a.mp4"), ("b", "truncated")]
    with pytest.raises(AvlabelError, match="all 2 videos failed, e.g. a: cannot open a.mp4; b: truncated; fix"):
        check_failures(failed, 2, what="videos", listed_in="errors.log")
    with pytest.warns(AvlabelWarning, match=r"2 of 10 videos \(20%\) failed, more than 5%; see errors.log"):
        check_failures(failed, 10, what="videos", listed_in="errors.log")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_failures(failed, 10, what="videos", listed_in="errors.log", warn_share=0.2)  # 20% is not more than 20%
        check_failures([], 10, what="videos", listed_in="errors.log")


class _Payload:
    def __reduce__(self):
        return (print, ("never printed",))


def test_reading_turns_library_errors_into_one_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(
        AvlabelError, match=r"cannot read tags .*: it is not UTF-8 text \(byte 0xe9 at offset 3\); save as UTF-8"
    ):
        with reading(f"tags {path}", "save as UTF-8"):
            path.read_text(encoding="utf-8")
    with pytest.raises(AvlabelError, match=r"it is not valid JSON \(Expecting value at line 1, column 1\); rerun"):
        with reading("metrics.json", "rerun"):
            json.loads("nope")
    with pytest.raises(AvlabelError, match=r"cannot read x: No such file or directory; fix"):
        with reading("x", "fix"):
            open(tmp_path / "missing")  # noqa: SIM115


def test_reading_tells_a_refused_pickle_from_a_damaged_file(tmp_path):
    import torch

    torch.save({"payload": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(
        AvlabelError, match=r"refused to load state evil.pt: .*could run code \(it asks for print\); fix"
    ):
        with reading("state evil.pt", "fix"):
            torch.load(tmp_path / "evil.pt", weights_only=True)
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage")
    with pytest.raises(
        AvlabelError, match=r"cannot read state garbage.pt: it is damaged, or a pickle that only loads by running"
    ):
        with reading("state garbage.pt", "fix"):
            torch.load(tmp_path / "garbage.pt", weights_only=True)
    with pytest.raises(AvlabelError, match="cannot read p: it is damaged"):
        with reading("p", "fix"):
            pickle.loads(b"\x80\x05garbage")
