"""RMSNorm as the PyTorch formula: the CPU path, and (in float64) the reference the
Triton kernels are tested against."""

from __future__ import annotations

import torch


def rms_norm_ref(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x * rsqrt(mean(x^2) + eps) * weight over the last axis, in at least fp32; the
    result has the weight's dtype."""
    dtype = torch.promote_types(x.dtype, torch.float32)
    x = x.to(dtype)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return (x * weight.to(dtype)).to(weight.dtype)
