"""RMSNorm: ``rms_norm(x, weight, eps, backend)`` normalises over the last axis in at
least fp32 and returns the weight's dtype (Triton: ``rmsnorm_triton``; PyTorch and the
float64 reference: ``rmsnorm_ref``). ``add_rms_norm`` adds a residual first (one kernel for
inference)."""

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


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float, backend: str = "auto",
                 out_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, n): s = x + residual, n = rms_norm(s, weight, eps, backend) in ``out_dtype``
    (default the weight's). Where autograd records nothing and the Triton kernels run, one
    kernel (read x and residual, write s and n) gives the same values as the separate
    steps, which the other cases take."""
    out_dtype = out_dtype or weight.dtype
    recording = torch.is_grad_enabled() and (x.requires_grad or residual.requires_grad or weight.requires_grad)
    wide = torch.float64 in (x.dtype, residual.dtype, weight.dtype)
    if (not recording and not wide and x.numel() and x.shape == residual.shape
            and resolve_backend(backend, x) == "triton"):
        from genomamba.ops.rmsnorm_triton import add_rms_norm_triton

        return add_rms_norm_triton(x, residual, weight, eps, out_dtype)
    s = x + residual
    return s, rms_norm(s, weight, eps, backend).to(out_dtype)
