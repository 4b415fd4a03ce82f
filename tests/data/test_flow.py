"""Optical flow: quantisation, direction, storage layouts, denseflow compatibility, folder checks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from avlabel.data.flow_estimators import flow_between
from avlabel.data.flow_extract import FlowConfig, iter_video_flow, run_flow
from avlabel.data.flow_format import ERRORS_NAME, FlowStore, dequantize, quantize
from avlabel.data.manifest import ClipRecord, Manifest
from avlabel.data.writer import write_clip
from avlabel.errors import AvlabelError


def panning_frames(num_frames=8, step=2, height=64, width=96, seed=0):
    """A smooth random texture moving ``step`` pixels right per frame."""
    texture = np.random.default_rng(seed).uniform(0, 255, (height, width + step * num_frames)).astype(np.float32)
    texture = cv2.GaussianBlur(texture, (0, 0), 2.0)
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255
    frames = [texture[:, step * (num_frames - i) : step * (num_frames - i) + width] for i in range(num_frames)]
    return np.repeat(np.stack(frames)[..., None], 3, axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def flow_manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow_videos")
    records = [
        ClipRecord(
            f"clip{i}",
            write_clip(root / f"clip{i}.mp4", panning_frames(8, step=2, seed=i), fps=25),
            "whistling",
            "train",
        )
        for i in range(3)
    ]
    return Manifest(records, root / "manifest.csv")


def test_quantisation_maps_the_bound_to_the_byte_range():
    values = np.array([-25.0, -20.0, 0.0, 20.0, 25.0, 0.1])
    assert quantize(values).tolist() == [0, 0, 128, 255, 255, 128]
    step = 40 / 255
    roundtrip = dequantize(quantize(np.linspace(-20, 20, 1001)))
    assert np.abs(roundtrip - np.linspace(-20, 20, 1001)).max() <= step / 2 + 1e-5


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_points_the_way_things_move(method):
    frames = panning_frames(2, step=3)
    field = flow_between(frames[:1], frames[1:], method=method)
    assert field.shape == (1, 64, 96, 2)
    centre = field[0, 16:48, 24:72]
    assert centre[..., 0].mean() == pytest.approx(3.0, abs=0.4)
    assert abs(centre[..., 1].mean()) < 0.4


def test_tvl1_without_contrib_names_the_package_to_install():
    if hasattr(cv2, "optflow"):
        pytest.skip("opencv-contrib is installed")
    with pytest.raises(AvlabelError, match="opencv-contrib-python-headless"):
        flow_between(panning_frames(2)[:1], panning_frames(2)[1:], method="tvl1")


@pytest.mark.parametrize("format", ["jpg", "npz"])
def test_run_writes_each_layout_and_the_store_reads_it_back(flow_manifest, tmp_path, format):
    config = FlowConfig(format=format)
    summary = run_flow(flow_manifest, tmp_path / "flow", config)
    assert (summary.computed, summary.skipped, summary.failed, summary.flow_frames) == (3, 0, [], 21)
    meta = json.loads((tmp_path / "flow" / "flow_meta.json").read_text())
    assert meta["format"] == format and meta["method"] == "dis" and meta["manifest_sha256"] == flow_manifest.sha256
    if format == "jpg":
        assert sorted(p.name for p in (tmp_path / "flow" / "clip0").iterdir())[:2] == ["x_00001.jpg", "x_00002.jpg"]
    else:
        assert (tmp_path / "flow" / "clip0.npz").is_file()
    store = FlowStore(tmp_path / "flow")
    record = flow_manifest[0]
    assert store.num_flows(record) == 7
    stored = store.read(record, [0, 3, 6, 9])  # 9 is past the end: clamped to the last flow
    expected = dequantize(np.stack(list(iter_video_flow(record.path, config))))
    tolerance = 0.5 if format == "jpg" else 0.0  # JPEG is lossy, npz exact
    np.testing.assert_allclose(stored, expected[[0, 3, 6, 6]], atol=tolerance)
    assert stored[:, 16:48, 24:72, 0].mean() == pytest.approx(2.0, abs=0.4)

    again = run_flow(flow_manifest, tmp_path / "flow", config)
    assert (again.computed, again.skipped) == (0, 3)


def test_reads_mmaction2_denseflow_folders(tmp_path):
    record = ClipRecord("abc_000010_000020", tmp_path / "abc.mp4", "playing drums", "train")
    video_dir = tmp_path / "rawframes" / "playing_drums" / record.video_id
    video_dir.mkdir(parents=True)
    for index, (x, y) in enumerate([(128, 128), (255, 0), (0, 191)], start=1):
        cv2.imwrite(str(video_dir / f"x_{index:05d}.jpg"), np.full((8, 12), x, np.uint8))
        cv2.imwrite(str(video_dir / f"y_{index:05d}.jpg"), np.full((8, 12), y, np.uint8))
        cv2.imwrite(str(video_dir / f"img_{index:05d}.jpg"), np.zeros((8, 12, 3), np.uint8))
    store = FlowStore(tmp_path / "rawframes")
    assert store.is_denseflow and store.num_flows(record) == 3
    flow = store.read(record, [1, 2])
    assert flow.shape == (2, 8, 12, 2)
    np.testing.assert_allclose(flow[:, 0, 0], [[20.0, -20.0], [-20.0, 191 * 40 / 255 - 20]], atol=0.2)
    # Found anywhere a few levels down, too.
    (tmp_path / "rawframes" / "playing_drums").rename(tmp_path / "rawframes" / "val")
    assert FlowStore(tmp_path / "rawframes").num_flows(record) == 3


def test_flow_folder_of_another_manifest_is_refused(flow_manifest, tmp_path):
    run_flow(flow_manifest, tmp_path / "flow", FlowConfig())
    other = [ClipRecord("stranger", tmp_path / "s.mp4", "whistling", "train"), *flow_manifest]
    with pytest.raises(AvlabelError, match=r"lacks flow for 1 of 4 videos \(e\.g\. stranger\)"):
        FlowStore(tmp_path / "flow").check_covers(other)
    FlowStore(tmp_path / "flow").check_covers(flow_manifest)


def test_a_folder_is_never_read_or_extended_for_other_files_under_the_same_ids(flow_manifest, tmp_path):
    run_flow(flow_manifest, tmp_path / "flow", FlowConfig())
    # Another dataset whose ids collide: clip1 is another video here.
    other = tmp_path / "other.mp4"
    write_clip(other, panning_frames(12, step=3, seed=9), fps=25)
    records = [
        record if record.video_id != "clip1" else ClipRecord("clip1", other, "whistling", "train")
        for record in flow_manifest
    ]
    collide = Manifest(records, tmp_path / "other.csv")
    message = (
        rf"flow folder {tmp_path / 'flow'} was built from {flow_manifest.path}, not from {collide.path}: 1 of 3 clips "
        r"are other files under the same video_id \(clip1: clip1.mp4, \d+ bytes there, other.mp4, \d+ bytes here\)"
    )
    with pytest.raises(AvlabelError, match=message + ".*--out DIR"):
        FlowStore(tmp_path / "flow").check_covers(collide, collide.path)
    with pytest.raises(AvlabelError, match=message + "; use another --out"):
        run_flow(collide, tmp_path / "flow", FlowConfig())
    assert json.loads((tmp_path / "flow" / "flow_meta.json").read_text())["manifest"] == str(flow_manifest.path)
    # The same files through another manifest (moved, absolute paths, ...) are the same videos.
    FlowStore(tmp_path / "flow").check_covers(flow_manifest.records, tmp_path / "copy.csv")


def test_a_folder_from_before_source_records_is_read_with_a_warning(flow_manifest, tmp_path):
    from avlabel.errors import AvlabelWarning

    run_flow(flow_manifest, tmp_path / "flow", FlowConfig())
    (tmp_path / "flow" / "flow_sources.tsv").unlink()
    with pytest.warns(AvlabelWarning, match="built before avlabel recorded which file each item came from"):
        FlowStore(tmp_path / "flow").check_covers(flow_manifest, flow_manifest.path)


def test_every_video_failing_is_an_error_and_leaves_nothing_behind(tmp_path):
    broken = [tmp_path / f"broken{i}.mp4" for i in range(2)]
    for path in broken:
        path.write_bytes(b"not a video")
    manifest = Manifest([ClipRecord(path.stem, path, "whistling", "train") for path in broken], tmp_path / "m.csv")
    with pytest.raises(
        AvlabelError, match=r"all 2 videos failed, e\.g\. broken0: cannot open .*; broken1: cannot open"
    ):
        run_flow(manifest, tmp_path / "flow", FlowConfig())
    assert not (tmp_path / "flow").exists()
    missing = Manifest([ClipRecord("gone", tmp_path / "gone.mp4", "whistling", "train")], tmp_path / "m.csv")
    with pytest.raises(
        AvlabelError, match=r"none of the 1 videos of .*m\.csv is a file \(.*gone\.mp4 does not exist\); fix the paths"
    ):
        run_flow(missing, tmp_path / "flow", FlowConfig())
    assert not (tmp_path / "flow").exists()


def test_failed_videos_are_logged_not_fatal_and_retried(flow_manifest, tmp_path):
    from avlabel.errors import AvlabelWarning

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    manifest = Manifest([*flow_manifest, ClipRecord("broken", broken, "whistling", "train")])
    with pytest.warns(AvlabelWarning, match=r"1 of 4 videos \(25%\) failed, more than 5%; see .*flow_errors.log"):
        summary = run_flow(manifest, tmp_path / "flow", FlowConfig())
    assert summary.computed == 3 and [video_id for video_id, _ in summary.failed] == ["broken"]
    assert (tmp_path / "flow" / ERRORS_NAME).read_text().startswith("broken\tcannot open")
    FlowStore(tmp_path / "flow").check_covers(manifest)  # failures are skipped items, not "another manifest"
    write_clip(broken, panning_frames(4), fps=25)
    rerun = run_flow(manifest, tmp_path / "flow", FlowConfig())
    assert (rerun.computed, rerun.skipped, rerun.failed) == (1, 3, [])
    assert (tmp_path / "flow" / ERRORS_NAME).read_text() == ""


def test_other_settings_or_a_foreign_folder_are_refused(flow_manifest, tmp_path):
    run_flow(flow_manifest, tmp_path / "flow", FlowConfig())
    with pytest.raises(AvlabelError, match="short_side 256 \\(asked 128\\)"):
        run_flow(flow_manifest, tmp_path / "flow", FlowConfig(short_side=128))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(AvlabelError, match="not an avlabel flow folder"):
        run_flow(flow_manifest, tmp_path / "photos", FlowConfig())
    with pytest.raises(AvlabelError, match="unknown flow method"):
        FlowConfig(method="raft")
