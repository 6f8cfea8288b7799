"""Devices and precision, the same for every command: ``--device auto|cpu|cuda|cuda:N``
and ``precision auto|bf16|fp32`` (auto: bf16 autocast on a GPU, fp32 on the CPU)."""

from __future__ import annotations

import torch

from genomamba.errors import GenomambaError

PRECISIONS = ("auto", "bf16", "fp32")


def resolve_device(name: str) -> torch.device:
    """``auto`` (the GPU if there is one), or a torch device name that exists here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GenomambaError(f"--device: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GenomambaError("--device cuda: no CUDA GPU available")
    return device


def uses_bf16(device: torch.device, precision: str = "auto") -> bool:
    if precision not in PRECISIONS:
        raise GenomambaError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return device.type == "cuda"
    return precision == "bf16"


def autocast(device: torch.device, precision: str = "auto"):
    """The autocast context of ``precision`` on ``device`` (bf16, or off)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, precision))


def allow_tf32(device: torch.device) -> None:
    """TF32 matmuls and convolutions on a GPU (fp32 runs at tensor-core speed)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


#: GPU memory one window of the default model holds during an inference forward, per base
#: (both strands: one layer's activations and the residual stream). Measured on the H200 at
#: about 29 KB per base (benchmarks/RESULTS.md, "Variant scoring"); kept high to be safe.
GPU_BYTES_PER_BASE = 40_000
MAX_GPU_BATCH = 256


def inference_batch(window: int, device=None) -> int:
    """Windows of ``window`` bases per inference forward pass. On a GPU: as many as half its
    free memory holds, at most MAX_GPU_BATCH (256 windows of 1k, about 12 of 131k on an
    H200, so that the scan has rows enough for one pass). Elsewhere about 64k bases per
    pass: 64 windows of 1k, 4 of 16k, 1 of 131k. A GPU batch of 8 or more is rounded down to a
    multiple of 8: on the H200 a batch of 9 131k windows scored 7.0 SNVs/s where 8 scored 9.0,
    and 114 16k windows 89 where 108 scored 103 (benchmarks/RESULTS.md)."""
    if device is not None and getattr(device, "type", None) == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        batch = max(1, min(MAX_GPU_BATCH, int(free * 0.5 // (GPU_BYTES_PER_BASE * window))))
        return batch - batch % 8 if batch >= 8 else batch
    return max(1, min(64, 65536 // window))
