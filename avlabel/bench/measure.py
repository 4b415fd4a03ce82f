"""What the throughput benchmark measures with: timing, peak memory, FLOP counts and the device's matmul rate.

* timing: wall-clock and process CPU seconds of a run of steps, with one synchronisation before
  and one after, so the GPU queue never drains inside the timed loop;
* peak memory: CUDA ``max_memory_allocated`` (weights, gradients, optimiser state, activations);
  on the CPU the growth of the process' peak resident set over the phase (Linux: the peak is
  reset through ``/proc/self/clear_refs`` first; it is approximate because the allocator may
  reuse pages freed by an earlier model);
* FLOPs of one training step counted by ``torch.utils.flop_counter`` (forward and backward, the
  model's own matmuls/attention only, no recomputation), and the device's *measured* dense
  matmul rate — bf16 on CUDA (the precision training runs in, under autocast), fp32 on the CPU —
  which model FLOPs utilisation is measured against.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def synchronize(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device):
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def matmul_flops_per_s(device: str | torch.device, size: int | None = None, repeats: int | None = None) -> float:
    """The device's measured dense matmul rate in FLOP/s (bf16 on CUDA, fp32 on the CPU).

    A square ``size`` x ``size`` product costs ``2 * size**3`` FLOPs; the best of a few timed
    batches of ``repeats`` products is kept, so a moment of contention from other processes does
    not lower the ceiling MFU is measured against.
    """
    import torch

    device = torch.device(device)
    on_cuda = device.type == "cuda"
    size = size or (8192 if on_cuda else 2048)
    repeats = repeats or (20 if on_cuda else 3)
    dtype = torch.bfloat16 if on_cuda else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up (kernel selection, thread pool start)
    best = float("inf")
    for _ in range(3):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 * repeats / best


class PeakMemory:
    """Peak memory of a phase: CUDA allocator peak, or growth of the process' peak RSS on the CPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self.baseline = 0

    def reset(self) -> None:
        import torch

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back so the baseline is honest
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        self.baseline = _proc_status_bytes("VmHWM")

    def peak_bytes(self) -> int | None:
        import torch

        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        peak = _proc_status_bytes("VmHWM")
        return None if peak is None or self.baseline is None else peak - self.baseline


def _proc_status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` in bytes (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def count_train_step_flops(
    model: torch.nn.Module, inputs: dict, labels: torch.Tensor, target: torch.Tensor
) -> tuple[int, int]:
    """``(forward, forward + backward)`` FLOPs of one training step, from ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    from avlabel.train.objective import imd_objective

    device = labels.device
    with FlopCounterMode(display=False) as forward_counter, autocast(device):
        output = model(**inputs)
        loss = imd_objective(output, labels, target).loss
    with FlopCounterMode(display=False) as backward_counter:
        loss.backward()
    model.zero_grad(set_to_none=True)
    forward = forward_counter.get_total_flops()
    return forward, forward + backward_counter.get_total_flops()


def timed(device: torch.device, step: Callable[[], None], steps: int) -> tuple[float, float]:
    """Wall-clock and process CPU seconds for ``steps`` calls of ``step``, with a
    synchronisation only before and after (CPU seconds tell figures from a shared machine apart
    from contention: they barely change when other processes compete for the cores)."""
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu_start


def device_description(device: str | torch.device) -> dict[str, Any]:
    """What the figures were measured on: device name, threads, library versions."""
    import torch

    device = torch.device(device)
    described = {"device": str(device), "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        described["name"] = torch.cuda.get_device_name(device)
        described["cuda"] = torch.version.cuda
    else:
        described["name"] = platform.processor() or platform.machine()
        described["threads"] = torch.get_num_threads()
        described["cpus"] = os.cpu_count()
    return described
