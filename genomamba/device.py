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
