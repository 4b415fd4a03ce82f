"""PyTorch TV-L1 (``tvl1-torch``): accuracy against known motion and OpenCV, batching, devices, storage."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avlabel.data.flow_estimators import flow_estimator, to_grey
from avlabel.data.flow_extract import FlowConfig, _frame_pairs, run_flow
from avlabel.data.flow_format import FlowStore
from avlabel.data.flow_torch import PRESETS, TVL1Flow, _median, tvl1_flow
from avlabel.data.flow_truth import end_point_error, motion_pair
from avlabel.data.manifest import ClipRecord, Manifest
from avlabel.data.writer import write_clip


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Thousands of small tensor operations: a second OpenMP thread only spin-waits on a shared CPU.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _scene(seed: int = 0):
    """A 128x96 frame pair: the camera moves (1.37, -0.62) px, a disc (-3.2, 2.1) px."""
    return motion_pair(96, 128, camera=(1.37, -0.62), object_motion=(-3.2, 2.1), radius=20, seed=seed)


def _grey(pair):
    return to_grey(pair.first[None])[0], to_grey(pair.second[None])[0]


@pytest.fixture(scope="module")
def scene_and_flow():
    scene = _scene()
    return scene, TVL1Flow(device="cpu")(*_grey(scene))


def test_ground_truth_scene_moves_as_stated():
    scene = _scene()
    assert scene.first.shape == scene.second.shape == (96, 128, 3) and scene.flow.shape == (96, 128, 2)
    assert 0.85 < scene.valid.mean() < 0.97  # occluded pixels, the disc's rim and the frame's edge are left out
    assert end_point_error(scene.flow, scene) == 0.0
    assert end_point_error(np.zeros_like(scene.flow), scene) > 1.4  # the smallest true motion is 1.5 px


def test_tvl1_torch_recovers_known_sub_pixel_motion(scene_and_flow):
    scene, flow = scene_and_flow
    # Measured 0.062-0.066 px on seeds 0-2 (OpenCV's TV-L1: 0.066-0.069, DIS medium: 0.15-0.23).
    assert end_point_error(flow, scene) < 0.1
    for preset in ("fast", "ultrafast"):
        assert end_point_error(TVL1Flow(PRESETS[preset], device="cpu")(*_grey(scene)), scene) < 0.12


def test_tvl1_torch_agrees_with_dis(scene_and_flow):
    scene, flow = scene_and_flow
    dis = flow_estimator("dis")(*_grey(scene))
    assert np.linalg.norm(flow - dis, axis=-1)[scene.valid].mean() < 0.3  # measured 0.12-0.20: mostly DIS's own error


@pytest.mark.skipif(not hasattr(cv2, "optflow"), reason="OpenCV's TV-L1 needs opencv-contrib-python-headless")
def test_tvl1_torch_agrees_with_opencv_tvl1(scene_and_flow):
    scene, flow = scene_and_flow
    reference = flow_estimator("tvl1")(*_grey(scene))
    assert np.linalg.norm(flow - reference, axis=-1)[scene.valid].mean() < 0.03  # measured 0.013-0.015 px


def test_a_pairs_flow_does_not_depend_on_its_batch():
    pairs = [_grey(_scene(seed)) for seed in range(3)]
    previous, current = np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])
    batched = TVL1Flow(device="cpu", batch_pairs=3)(previous, current)
    assert batched.shape == (3, 96, 128, 2)
    for index, (a, b) in enumerate(pairs):
        np.testing.assert_allclose(batched[index], TVL1Flow(device="cpu", batch_pairs=1)(a, b), atol=1e-5)
    split = TVL1Flow(device="cpu", batch_pairs=2)(previous, current)  # batches of 2 and 1
    np.testing.assert_allclose(split, batched, atol=1e-5)


def test_flow_stays_on_the_frames_device():
    first, second = (torch.from_numpy(image) for image in _grey(_scene()))
    flow = tvl1_flow(first[None], second[None], PRESETS["ultrafast"])
    assert flow.device == first.device and flow.dtype == torch.float32 and flow.shape == (1, 96, 128, 2)
    assert TVL1Flow(device="cpu").device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_the_cpu():
    scene = _scene()
    on_cpu = TVL1Flow(device="cpu")(*_grey(scene))
    on_gpu = TVL1Flow(device="cuda")(*_grey(scene))  # compiled by default on CUDA
    assert np.linalg.norm(on_gpu - on_cpu, axis=-1)[scene.valid].mean() < 0.01
    assert end_point_error(on_gpu, scene) < 0.1


@pytest.mark.slow
def test_compiled_solver_matches_eager():
    first, second = (torch.from_numpy(image)[None] for image in _grey(_scene()))
    eager, compiled = tvl1_flow(first, second), tvl1_flow(first, second, compile=True)
    # Fused kernels round differently, which can move a pair's stop by an iteration.
    assert (compiled - eager).norm(dim=-1).mean() < 0.01


@pytest.mark.parametrize("size", [3, 5])
def test_median_filter_equals_the_sorting_median(size):
    rng = np.random.default_rng(0)
    for values in (
        torch.from_numpy(rng.standard_normal((2, 2, 19, 23)).astype(np.float32)),
        torch.from_numpy(rng.integers(0, 4, (2, 2, 19, 23)).astype(np.float32)),
    ):  # the second with ties
        windows = F.pad(values, (size // 2,) * 4, mode="replicate").unfold(2, size, 1).unfold(3, size, 1)
        expected = windows.reshape(*values.shape, size * size).median(dim=-1).values
        assert torch.equal(_median(values, size), expected)


def test_frame_pairs_cover_every_consecutive_pair_once():
    frames = [np.full((1,), index) for index in range(8)]
    for batch_pairs in (1, 3, 7, 10):
        stacks = list(_frame_pairs(frames, batch_pairs))
        assert all(len(previous) <= batch_pairs for previous, _ in stacks)
        pairs = [(int(a[0]), int(b[0])) for previous, current in stacks for a, b in zip(previous, current)]
        assert pairs == [(index, index + 1) for index in range(7)]


def test_flow_run_with_tvl1_torch_stores_what_the_estimator_computes(tmp_path):
    scene = _scene()
    frames = np.stack([scene.first, scene.second, scene.first])  # the motion, then back
    video = write_clip(tmp_path / "clip.mp4", frames, fps=25, video_options={"crf": "0"})
    manifest = Manifest([ClipRecord("clip", video, "whistling", "train")])
    summary = run_flow(
        manifest, tmp_path / "flow", FlowConfig(method="tvl1-torch", preset="fast", format="npz"), device="cpu"
    )
    assert summary.flow_frames == 2
    store = FlowStore(tmp_path / "flow")
    assert store.meta["method"] == "tvl1-torch" and store.meta["preset"] == "fast"
    from avlabel.data.decode import read_frames

    decoded = to_grey(read_frames(video, [0, 1, 2]))
    expected = TVL1Flow(PRESETS["fast"], device="cpu")(decoded[:-1], decoded[1:])
    np.testing.assert_allclose(store.read(manifest[0], [0, 1]), expected, atol=40 / 255 / 2 + 1e-4)  # one rounding step
