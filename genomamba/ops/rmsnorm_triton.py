"""RMSNorm on the Triton kernels of ``genomamba.ops.kernels.rmsnorm`` (GPU, or the CPU
interpreter). The backward keeps only x and the per-row 1/rms. ``add_rms_norm_triton``:
the residual add and the norm in one pass, for inference (no autograd)."""

from __future__ import annotations

import torch
from triton import cdiv, next_power_of_2

from genomamba.ops.kernels.rmsnorm import _add_rmsnorm_fwd_kernel, _rmsnorm_bwd_kernel, _rmsnorm_fwd_kernel
from genomamba.ops.backend import interpreting


def _blocks(d: int):
    """(BLOCK_M, BLOCK_D, ITERS, warps): tiny under the interpreter, so programs meet ragged rows."""
    block_d = next_power_of_2(d)
    if interpreting():
        return 2, block_d, 2, 1
    return max(1, 2048 // block_d), block_d, 8, 4


def _rows2d(t: torch.Tensor) -> torch.Tensor:
    """t as (rows, last axis) with unit stride along the last axis (a copy only if needed)."""
    t2 = t.reshape(-1, t.shape[-1])
    return t2 if t2.stride(-1) == 1 else t2.contiguous()


class _RMSNormTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):
        shape = x.shape
        x2 = _rows2d(x)
        M, d = x2.shape
        block_m, block_d, iters, warps = _blocks(d)
        out = torch.empty((M, d), device=x.device, dtype=weight.dtype)
        rstd = torch.empty((M,), device=x.device, dtype=torch.float32)
        grid = (cdiv(M, block_m * iters),)
        _rmsnorm_fwd_kernel[grid](x2, weight, out, rstd, M, d, x2.stride(0), out.stride(0), eps,
                                  BLOCK_M=block_m, BLOCK_D=block_d, ITERS=iters, num_warps=warps)
        ctx.save_for_backward(x2, weight, rstd)
        ctx.shape = shape
        return out.view(shape)

    @staticmethod
    def backward(ctx, dout):
        x2, weight, rstd = ctx.saved_tensors
        M, d = x2.shape
        dy = _rows2d(dout)
        block_m, block_d, iters, warps = _blocks(d)
        grid = (cdiv(M, block_m * iters),)
        dx = torch.empty_like(x2)
        dw_part = torch.empty((grid[0], d), device=x2.device, dtype=torch.float32)
        _rmsnorm_bwd_kernel[grid](x2, weight, rstd, dy, dx, dw_part, M, d, x2.stride(0), dy.stride(0), dx.stride(0),
                                  BLOCK_M=block_m, BLOCK_D=block_d, ITERS=iters, num_warps=warps)
        return dx.view(ctx.shape), dw_part.sum(0).to(weight.dtype), None


def rms_norm_triton(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return _RMSNormTriton.apply(x, weight, eps)


def add_rms_norm_triton(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float,
                        out_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(x + residual, RMSNorm of it in ``out_dtype``) in one kernel, without autograd: the sum
    has ``torch.result_type(x, residual)``, and the norm is taken of the sum as stored, so
    both equal ``s = x + residual; rms_norm_triton(s, weight, eps).to(out_dtype)``."""
    shape = x.shape
    x2, r2 = _rows2d(x), _rows2d(residual)
    M, d = x2.shape
    block_m, block_d, iters, warps = _blocks(d)
    total = torch.empty((M, d), device=x.device, dtype=torch.result_type(x, residual))
    out = torch.empty((M, d), device=x.device, dtype=out_dtype)
    _add_rmsnorm_fwd_kernel[(cdiv(M, block_m * iters),)](
        x2, r2, weight, total, out, M, d, x2.stride(0), r2.stride(0), total.stride(0), out.stride(0), eps,
        BLOCK_M=block_m, BLOCK_D=block_d, ITERS=iters, num_warps=warps)
    return total.view(shape), out.view(shape)
