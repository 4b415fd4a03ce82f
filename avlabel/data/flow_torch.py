"""TV-L1 optical flow as batched PyTorch tensor code: many frame pairs at once, on the CPU or CUDA.

TV-L1 (Zach, Pock & Bischof, DAGM 2007; Wedel, Pock, Zach, Bischof & Cremers 2009) finds the flow
``u`` minimising ``sum |grad u_1| + |grad u_2| + lambda |I_1(x + u) - I_0(x)|``. Around the current
flow ``u0`` it linearises the data term, ``rho(u) = I_1(x + u0) + grad I_1 . (u - u0) - I_0``,
decouples the two terms through an auxiliary field ``v`` (coupling weight ``1 / (2 theta)``) and
alternates:

1. ``v = u + TH(rho(u))``: the point-wise thresholding step (Zach et al., Eq. 11), a step of at
   most ``lambda theta |grad I_1|`` along the image gradient;
2. ``u = v + theta div p`` and ``p = (p + tau / theta grad u) / (1 + tau / theta |grad u|)``:
   Chambolle's projection algorithm for the total-variation (ROF) part (Zach et al., Eqs. 12-13);

``warps`` times per pyramid level (re-linearising around the new flow), coarse to fine over a
pyramid of ``scales`` levels shrinking by ``scale_step``, with a median filter of ``u`` before
each outer iteration (Wedel et al.'s robustness step). Defaults, discretisation (central
differences for the image gradient, forward differences for ``grad u`` and the matching
backward-difference divergence, bicubic warping) and stopping rule (a level's warp ends when
``sum |u_new - u|^2 < epsilon^2 * pixels``) are those of OpenCV's ``DualTVL1OpticalFlow``, after
the IPOL description by Sánchez Pérez, Meinhardt-Llopis & Facciolo (2013); OpenCV's CUDA
``OpticalFlowDual_TVL1``, which denseflow runs for Kinetics, shares the parameters.

Batching: every pair of a batch runs through the same tensor operations, and a pair whose flow
has converged (by the stopping rule) is frozen while the others continue, so a pair's flow does
not depend on the batch it was computed in. The loop over iterations is Python; everything
inside an iteration is whole-batch tensor arithmetic (no loop over pixels or pairs), and the
only host synchronisation is the convergence test once per outer iteration. With ``compile=True``
(the default on CUDA) the iteration and the median filter go through ``torch.compile``, which
fuses their few dozen element-wise operations into a handful of kernels: on a GPU these
operations are memory-bound and launch-bound, which fusion addresses.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from avlabel._device import resolve_device


@dataclass(frozen=True)
class TVL1Params:
    """TV-L1 settings; the defaults are OpenCV's (``cv2.optflow.DualTVL1OpticalFlow_create()``)."""

    tau: float = 0.25  # time step of the dual update (<= 1/4 for convergence)
    weight: float = 0.15  # lambda: data-term weight; smaller gives smoother flow
    theta: float = 0.3  # coupling of u and v; small keeps them close
    scales: int = 5  # pyramid levels (fewer when the image gets below 16 px)
    scale_step: float = 0.8  # size ratio between pyramid levels
    warps: int = 5  # re-linearisations of the data term per level
    epsilon: float = 0.01  # stopping threshold on the root-mean-square change of u per iteration
    inner_iterations: int = 30
    outer_iterations: int = 10  # median filter before each; at most inner x outer iterations per warp
    median_size: int = 5  # median filter window (1: no filtering, as OpenCV's CUDA version)


# ``avlabel flow --method tvl1-torch --preset P``. ``medium`` is OpenCV's TV-L1. The others do a
# third and a fifth of its work with fewer warps and iterations, and make up for it with coarser
# pyramids (steps of 0.6 and 0.5), which reach large motions sooner: on the ground-truth scenes of
# benchmarks/bench_flow.py (motions up to 11 px at 340x256) they are as accurate as ``medium``
# or more (mean EPE 0.093 and 0.107 px against 0.109 px; README, "Flow cost").
PRESETS = {
    "medium": TVL1Params(),
    "fast": TVL1Params(scale_step=0.6, warps=2, outer_iterations=3, inner_iterations=10),
    "ultrafast": TVL1Params(scale_step=0.5, warps=2, outer_iterations=2, inner_iterations=10),
}


def tvl1_flow(
    first: torch.Tensor, second: torch.Tensor, params: TVL1Params = TVL1Params(), compile: bool = False
) -> torch.Tensor:
    """TV-L1 flow from ``first[i]`` to ``second[i]``.

    Args:
        first, second: ``(N, H, W)`` grey frames on a 0-255 scale (any real or integer dtype).
        params: solver settings.
        compile: run the iteration and the median filter through ``torch.compile`` (the first
            call compiles, tens of seconds; fused kernels round differently, which can move a
            pair's stop by an iteration: flows differ from eager mode by < 0.01 px on average).

    Returns:
        ``(N, H, W, 2)`` float32 displacements (x, y) in pixels, on the frames' device.
    """
    pyramid = _pyramid(first.float()[:, None], second.float()[:, None], params)  # fine to coarse, (N, 1, h, w) each
    coarsest = pyramid[-1][0]
    flow = coarsest.new_zeros(coarsest.shape[0], 2, *coarsest.shape[-2:])  # (N, 2, h, w): (x, y)
    for first_level, second_level in reversed(pyramid):
        flow = _resize_flow(flow, first_level.shape[-2:])
        flow = _solve_level(first_level, second_level, flow, params, *_kernels(compile))
    return flow.permute(0, 2, 3, 1).contiguous()


class TVL1Flow:
    """The ``tvl1-torch`` estimator of `avlabel.data.flow_estimators`: grey uint8 pairs in, flow out.

    Called with one pair (``(H, W)`` arrays) or a stack of pairs (``(N, H, W)``), which it splits
    into batches of ``batch_pairs`` on ``device`` (default: CUDA when available). ``compile``
    defaults to True on CUDA and False on the CPU, where compiling costs about 20 s per process
    and a C++ compiler.
    """

    def __init__(
        self,
        params: TVL1Params = TVL1Params(),
        device: str | torch.device | None = None,
        batch_pairs: int | None = None,
        compile: bool | None = None,
    ):
        self.params = params
        self.device = resolve_device(device)
        # Tens of pairs fill a GPU; on the CPU batching gains nothing (memory-bound either way).
        self.batch_pairs = batch_pairs or (32 if self.device.type == "cuda" else 1)
        self.compile = compile if compile is not None else self.device.type == "cuda"

    def __call__(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        single = previous.ndim == 2
        previous, current = (previous[None], current[None]) if single else (previous, current)
        fields = []
        with torch.inference_mode():
            for start in range(0, len(previous), self.batch_pairs):
                batch = slice(start, start + self.batch_pairs)
                first = torch.from_numpy(np.ascontiguousarray(previous[batch])).to(self.device)
                second = torch.from_numpy(np.ascontiguousarray(current[batch])).to(self.device)
                fields.append(tvl1_flow(first, second, self.params, self.compile).cpu().numpy())
        fields = np.concatenate(fields)
        return fields[0] if single else fields


def _pyramid(first: torch.Tensor, second: torch.Tensor, params: TVL1Params) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``[(first, second)]`` from full size down, each level ``scale_step`` of the one above (anti-aliased)."""
    levels = [(first, second)]
    for _ in range(params.scales - 1):
        height, width = (round(side * params.scale_step) for side in levels[-1][0].shape[-2:])
        if min(height, width) < 16:  # OpenCV's limit: below it the level has too little to match
            break
        levels.append(
            tuple(
                F.interpolate(image, (height, width), mode="bilinear", antialias=True, align_corners=False)
                for image in levels[-1]
            )
        )
    return levels


def _resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(N, 2, h, w)`` flow to ``size``, displacements scaled with the grid."""
    if tuple(flow.shape[-2:]) == tuple(size):
        return flow
    scale = flow.new_tensor([size[1] / flow.shape[-1], size[0] / flow.shape[-2]]).view(1, 2, 1, 1)
    return F.interpolate(flow, size, mode="bilinear", align_corners=False) * scale


def _solve_level(
    first: torch.Tensor, second: torch.Tensor, flow: torch.Tensor, params: TVL1Params, iteration, median
) -> torch.Tensor:
    """Refine ``flow`` ``(N, 2, h, w)`` on one pyramid level (``first``, ``second``: ``(N, 1, h, w)``)."""
    batch, _, height, width = first.shape
    images = torch.cat([second, _central_gradient(second)], dim=1)  # (N, 3, h, w): I_1, dI_1/dx, dI_1/dy
    dual = flow.new_zeros(batch, 2, 2, height, width)  # (N, flow component, gradient axis, h, w)
    constants = {
        "step_bound": params.weight * params.theta,
        "theta": params.theta,
        "dual_step": params.tau / params.theta,
        "threshold": params.epsilon**2 * height * width,
    }
    for _ in range(params.warps):
        warped = _warp(images, flow)  # I_1 and its gradient at x + u0
        image_gradient = warped[:, 1:]  # (N, 2, h, w)
        gradient_sq = image_gradient.square().sum(1, keepdim=True).clamp_min(1e-10)
        residual_at_zero = warped[:, :1] - (image_gradient * flow).sum(1, keepdim=True) - first  # rho(u) - grad I_1 . u
        active = torch.ones(batch, 1, 1, 1, dtype=torch.bool, device=flow.device)  # pairs still changing
        for _ in range(params.outer_iterations):
            if params.median_size > 1:
                flow = torch.where(active, median(flow, params.median_size), flow)
            for _ in range(params.inner_iterations):
                flow, dual, active = iteration(
                    flow, dual, active, residual_at_zero, image_gradient, gradient_sq, **constants
                )
            if not bool(active.any()):  # the one host synchronisation per outer iteration
                break
    return flow


def _iteration(
    flow,
    dual,
    active,
    residual_at_zero,
    image_gradient,
    gradient_sq,
    *,
    step_bound: float,
    theta: float,
    dual_step: float,
    threshold: float,
):
    """One thresholding + projection step for the pairs still ``active``; ``(flow, dual, active)`` after it."""
    batch = flow.shape[0]
    residual = residual_at_zero + (image_gradient * flow).sum(1, keepdim=True)  # rho(u), (N, 1, h, w)
    # TH: -rho / |grad I|^2 along grad I, clamped to +-lambda theta (Zach et al. Eq. 11's three cases in one).
    coupled = flow + (-residual / gradient_sq).clamp(-step_bound, step_bound) * image_gradient  # v
    updated = coupled + theta * _divergence(dual)
    change = (updated - flow).square().sum((1, 2, 3)).view(batch, 1, 1, 1)
    flow_gradient = _forward_gradient(updated)  # (N, 2, 2, h, w)
    norm = 1 + dual_step * flow_gradient.square().sum(2, keepdim=True).sqrt()
    dual = torch.where(active[..., None], (dual + dual_step * flow_gradient) / norm, dual)
    flow = torch.where(active, updated, flow)
    return flow, dual, active & (change > threshold)


@functools.cache
def _kernels(compile: bool):
    """The iteration and median filter, compiled once per process when asked (shapes vary: dynamic)."""
    if not compile:
        return _iteration, _median
    return torch.compile(_iteration, dynamic=True), torch.compile(_median, dynamic=True)


def _central_gradient(image: torch.Tensor) -> torch.Tensor:
    """``(N, 1, h, w)`` -> ``(N, 2, h, w)`` central differences (x, y), one-sided halves at the border."""
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    dx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    dy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    return torch.cat([dx, dy], dim=1)


def _forward_gradient(field: torch.Tensor) -> torch.Tensor:
    """``(N, C, h, w)`` -> ``(N, C, 2, h, w)`` forward differences, zero in the last column / row."""
    dx = F.pad(field[..., :, 1:] - field[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(field[..., 1:, :] - field[..., :-1, :], (0, 0, 0, 1))
    return torch.stack([dx, dy], dim=2)


def _divergence(dual: torch.Tensor) -> torch.Tensor:
    """``(N, C, 2, h, w)`` -> ``(N, C, h, w)`` backward differences, the negative adjoint of `_forward_gradient`."""
    px, py = dual[:, :, 0], dual[:, :, 1]
    return px - F.pad(px[..., :, :-1], (1, 0, 0, 0)) + py - F.pad(py[..., :-1, :], (0, 0, 1, 0))


def _warp(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``images`` ``(N, C, h, w)`` sampled at ``x + flow`` (bicubic, border pixels repeated outside)."""
    _, _, height, width = images.shape
    xs = torch.arange(width, device=flow.device, dtype=flow.dtype)
    ys = torch.arange(height, device=flow.device, dtype=flow.dtype)
    x = (xs + flow[:, 0]) * (2 / max(width - 1, 1)) - 1  # (N, h, w), align_corners=True coordinates
    y = (ys[:, None] + flow[:, 1]) * (2 / max(height - 1, 1)) - 1
    return F.grid_sample(images, torch.stack([x, y], dim=-1), mode="bicubic", padding_mode="border", align_corners=True)


def _median(flow: torch.Tensor, size: int) -> torch.Tensor:
    """``size`` x ``size`` median filter of each component (border pixels repeated, as OpenCV).

    Forgetful selection (Paeth, Graphics Gems 1990) over the window's shifted views, in
    element-wise min/max: of ``size**2 // 2 + 2`` candidates the smallest and largest cannot be
    the median, so they are dropped and the next value taken in, until one remains. Three times
    faster than ``Tensor.median`` over unfolded windows on the CPU, and fusable by ``torch.compile``.
    """
    _, _, height, width = flow.shape
    padded = F.pad(flow, (size // 2,) * 4, mode="replicate")
    values = [padded[..., dy : dy + height, dx : dx + width] for dy in range(size) for dx in range(size)]
    half = len(values) // 2
    candidates, rest = values[: half + 2], values[half + 2 :]
    while True:
        for i in range(len(candidates) - 1):  # largest to the end
            candidates[i], candidates[i + 1] = (
                torch.minimum(candidates[i], candidates[i + 1]),
                torch.maximum(candidates[i], candidates[i + 1]),
            )
        for i in range(len(candidates) - 2, 0, -1):  # smallest to the front
            candidates[i - 1], candidates[i] = (
                torch.minimum(candidates[i - 1], candidates[i]),
                torch.maximum(candidates[i - 1], candidates[i]),
            )
        candidates = candidates[1:-1]
        if not rest:
            return candidates[0]
        candidates.append(rest.pop(0))
