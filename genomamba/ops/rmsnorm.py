"""RMSNorm: ``rms_norm(x, weight, eps, backend)`` normalises over the last axis in at
least fp32 and returns the weight's dtype (Triton: ``rmsnorm_triton``; PyTorch and the
float64 reference: ``rmsnorm_ref``)."""

from __future__ import annotations

import torch

from genomamba.ops.backend import resolve_backend
from genomamba.ops.rmsnorm_ref import rms_norm_ref


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, backend: str = "auto") -> torch.Tensor:
    """RMSNorm of x over its last axis with ``weight``; the result has the weight's dtype.
    backend: "triton", "torch" or "auto" (as for the selective scan); float64 always
    takes the PyTorch formula."""
    wide = torch.float64 in (x.dtype, weight.dtype)
    if not wide and x.numel() and resolve_backend(backend, x) == "triton":
        from genomamba.ops.rmsnorm_triton import rms_norm_triton

        return rms_norm_triton(x, weight, eps)
    return rms_norm_ref(x, weight, eps)
