"""Triton kernels: RMSNorm over the last axis, forward and backward.

    rstd = 1 / sqrt(mean(x^2) + eps),   out = x * rstd * weight         (fp32 arithmetic)

x is (M, d) with unit stride along d. The forward writes out and rstd (M,); the backward
recomputes x_hat = x * rstd and writes dx = rstd * (w dy - x_hat mean(x_hat w dy)) and,
per program, the partial weight gradient sum(dy x_hat) over its rows (summed by the
caller). A program walks ITERS blocks of BLOCK_M rows. For inference, the residual add
and the forward are also one kernel (_add_rmsnorm_fwd_kernel).
"""

import triton
import triton.language as tl


@triton.jit
def _rows(pid, it, M, d, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr, ITERS: tl.constexpr):
    rows = (pid * ITERS + it) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_D)
    mask = (rows < M)[:, None] & (cols < d)[None, :]
    return rows.to(tl.int64), cols, mask


@triton.jit
def _rmsnorm_fwd_kernel(
    x_ptr, w_ptr, out_ptr, rstd_ptr, M, d, s_x, s_out, eps,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr, ITERS: tl.constexpr,
):
    w = tl.load(w_ptr + tl.arange(0, BLOCK_D), mask=tl.arange(0, BLOCK_D) < d, other=0.0).to(tl.float32)
    for it in tl.static_range(ITERS):
        rows, cols, mask = _rows(tl.program_id(0), it, M, d, BLOCK_M, BLOCK_D, ITERS)
        x = tl.load(x_ptr + rows[:, None] * s_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / d + eps)
        out = x * rstd[:, None] * w[None, :]
        tl.store(out_ptr + rows[:, None] * s_out + cols[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)
        tl.store(rstd_ptr + rows, rstd, mask=rows < M)


@triton.jit
def _add_rmsnorm_fwd_kernel(
    x_ptr, r_ptr, w_ptr, sum_ptr, out_ptr, M, d, s_x, s_r, s_sum, s_out, eps,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr, ITERS: tl.constexpr,
):
    # Inference: sum = x + r, stored in sum's dtype, and out = RMSNorm(sum) of the stored
    # sum, as the add and _rmsnorm_fwd_kernel give separately, in one pass; no rstd.
    w = tl.load(w_ptr + tl.arange(0, BLOCK_D), mask=tl.arange(0, BLOCK_D) < d, other=0.0).to(tl.float32)
    for it in tl.static_range(ITERS):
        rows, cols, mask = _rows(tl.program_id(0), it, M, d, BLOCK_M, BLOCK_D, ITERS)
        x = tl.load(x_ptr + rows[:, None] * s_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        x += tl.load(r_ptr + rows[:, None] * s_r + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        x = x.to(sum_ptr.dtype.element_ty)
        tl.store(sum_ptr + rows[:, None] * s_sum + cols[None, :], x, mask=mask)
        x = x.to(tl.float32)
        rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / d + eps)
        out = x * rstd[:, None] * w[None, :]
        tl.store(out_ptr + rows[:, None] * s_out + cols[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rmsnorm_bwd_kernel(
    x_ptr, w_ptr, rstd_ptr, dy_ptr, dx_ptr, dw_part_ptr, M, d, s_x, s_dy, s_dx,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr, ITERS: tl.constexpr,
):
    cols0 = tl.arange(0, BLOCK_D)
    w = tl.load(w_ptr + cols0, mask=cols0 < d, other=0.0).to(tl.float32)
    dw = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    for it in tl.static_range(ITERS):
        rows, cols, mask = _rows(tl.program_id(0), it, M, d, BLOCK_M, BLOCK_D, ITERS)
        x = tl.load(x_ptr + rows[:, None] * s_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(dy_ptr + rows[:, None] * s_dy + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(rstd_ptr + rows, mask=rows < M, other=0.0)
        x_hat = x * rstd[:, None]
        wdy = dy * w[None, :]
        c = tl.sum(x_hat * wdy, axis=1) / d
        dx = (wdy - x_hat * c[:, None]) * rstd[:, None]
        tl.store(dx_ptr + rows[:, None] * s_dx + cols[None, :], dx.to(dx_ptr.dtype.element_ty), mask=mask)
        dw += dy * x_hat
    tl.store(dw_part_ptr + tl.program_id(0) * d + cols0, tl.sum(dw, axis=0), mask=cols0 < d)
