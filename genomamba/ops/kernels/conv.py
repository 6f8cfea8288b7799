"""Triton kernels: BiMamba's two depthwise convolutions with SiLU, forward and backward.

x is (n, E, L) with any row strides and unit stride along L (the model passes the x
half of in_proj's (n, 2E, L) output). weight is (2, E, K), bias (2, E). Direction 0 is
causal; direction 1 is anti-causal with its kernel reversed (flip -> causal conv ->
flip, so a weight means the same thing in both directions):

    pre[0, t] = bias[0] + sum_k w[0, k] x[t - (K-1) + k]
    pre[1, t] = bias[1] + sum_k w[1, k] x[t + (K-1) - k]
    u[r] = silu(pre[r])                                   u: (2, n, E, L)

Positions outside [0, L) read as 0. ``far`` = n * E * L is the offset of direction 1
in (2, n, E, L) buffers. A program owns BLOCK_E channels of one row; a direction's taps
of a time tile are one (BLOCK_E, KP2, BLOCK_L) load of x (the shifted reads hit the
cache), so pre is a sum over the tap axis in registers. Arithmetic is fp32.

The backward is two passes. ``_conv_silu_bwd_pre_kernel`` recomputes pre, writes
dpre = du * silu'(pre) for both directions and each program's weight and bias gradient
sums (summed over programs by the caller: deterministic). ``_conv_bwd_x_kernel`` gathers
dx from the shifted dpre tiles.
"""

import triton
import triton.language as tl


@triton.jit
def _channels(pid_row, E, BLOCK_E: tl.constexpr):
    """Row i (int64) and the channel offsets of program pid_row."""
    n_e = tl.cdiv(E, BLOCK_E)
    offs_e = (pid_row % n_e) * BLOCK_E + tl.arange(0, BLOCK_E)
    return (pid_row // n_e).to(tl.int64), offs_e, offs_e < E


@triton.jit
def _shifted(ptr, row, offs_t, s, L, mask_e):
    # tile at positions t + s (zero outside [0, L)), as fp32
    t = offs_t + s
    mask = mask_e[:, None] & ((t >= 0) & (t < L))[None, :]
    return tl.load(ptr + row[:, None] + t[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _taps(x_ptr, x_row, offs_t, offs_k, sign, L, mask_e, K: tl.constexpr):
    """(BLOCK_E, KP2, BLOCK_L) tile of x at t - (K-1) + k (sign 1: causal taps) or
    t + (K-1) - k (sign -1: anti-causal taps), fp32, zero outside [0, L) and for k >= K."""
    t = offs_t[None, None, :] + sign * (offs_k[None, :, None] - (K - 1))
    mask = mask_e[:, None, None] & (offs_k < K)[None, :, None] & (t >= 0) & (t < L)
    return tl.load(x_ptr + x_row[:, None, None] + t, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _tap_weights(w_ptr, b_ptr, offs_e, offs_k, mask_e, E, K: tl.constexpr, HAS_BIAS: tl.constexpr,
                 BLOCK_E: tl.constexpr):
    """Both directions' weights as (BLOCK_E, KP2, 1) and biases as (BLOCK_E, 1), fp32."""
    mask_ek = mask_e[:, None] & (offs_k < K)[None, :]
    w0 = tl.load(w_ptr + offs_e[:, None] * K + offs_k[None, :], mask=mask_ek, other=0.0).to(tl.float32)
    w1 = tl.load(w_ptr + (E + offs_e)[:, None] * K + offs_k[None, :], mask=mask_ek, other=0.0).to(tl.float32)
    b0 = tl.zeros((BLOCK_E, 1), dtype=tl.float32)
    b1 = tl.zeros((BLOCK_E, 1), dtype=tl.float32)
    if HAS_BIAS:
        b0 += tl.load(b_ptr + offs_e, mask=mask_e, other=0.0).to(tl.float32)[:, None]
        b1 += tl.load(b_ptr + E + offs_e, mask=mask_e, other=0.0).to(tl.float32)[:, None]
    return w0[:, :, None], w1[:, :, None], b0, b1


@triton.jit
def _silu_grad(pre):
    sig = tl.sigmoid(pre)
    return sig * (1.0 + pre * (1.0 - sig))


@triton.jit
def _conv_silu_fwd_kernel(
    x_ptr, w_ptr, b_ptr, u_ptr,
    far, E, L, s_x_n, s_x_e, s_u_n, s_u_e,
    K: tl.constexpr, KP2: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_L: tl.constexpr,
):
    """u[r, i, e, t] at u_ptr + r * far + i * s_u_n + e * s_u_e + t (unit stride along L)."""
    i, offs_e, mask_e = _channels(tl.program_id(0), E, BLOCK_E)
    offs_t = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_k = tl.arange(0, KP2)
    x_row = i * s_x_n + offs_e.to(tl.int64) * s_x_e
    w0, w1, b0, b1 = _tap_weights(w_ptr, b_ptr, offs_e, offs_k, mask_e, E, K, HAS_BIAS, BLOCK_E)
    pre0 = tl.sum(w0 * _taps(x_ptr, x_row, offs_t, offs_k, 1, L, mask_e, K), axis=1) + b0
    pre1 = tl.sum(w1 * _taps(x_ptr, x_row, offs_t, offs_k, -1, L, mask_e, K), axis=1) + b1
    mask = mask_e[:, None] & (offs_t < L)[None, :]
    ptrs = u_ptr + (i * s_u_n + offs_e.to(tl.int64) * s_u_e)[:, None] + offs_t[None, :]
    dty = u_ptr.dtype.element_ty
    tl.store(ptrs, (pre0 * tl.sigmoid(pre0)).to(dty), mask=mask)
    tl.store(ptrs + far, (pre1 * tl.sigmoid(pre1)).to(dty), mask=mask)


@triton.jit
def _conv_silu_bwd_pre_kernel(
    x_ptr, w_ptr, b_ptr, du_ptr, dpre_ptr, dw_part_ptr,
    far, E, L, s_x_n, s_x_e,
    K: tl.constexpr, KP2: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_E: tl.constexpr,
    BLOCK_L: tl.constexpr, ITERS: tl.constexpr,
):
    """dpre (2, n, E, L) (the caller passes fp32), and per program the partial sums
    dw_part[program, r, e, k] (k < K: weight taps, k = K: bias). A program walks ITERS
    time tiles; the weight gradients accumulate on the tap tiles in registers and are
    reduced over time once."""
    i, offs_e, mask_e = _channels(tl.program_id(0), E, BLOCK_E)
    offs_k = tl.arange(0, KP2)
    x_row = i * s_x_n + offs_e.to(tl.int64) * s_x_e
    row = (i * E + offs_e) * L
    w0, w1, b0, b1 = _tap_weights(w_ptr, b_ptr, offs_e, offs_k, mask_e, E, K, HAS_BIAS, BLOCK_E)
    acc0 = tl.zeros((BLOCK_E, KP2, BLOCK_L), dtype=tl.float32)
    acc1 = tl.zeros((BLOCK_E, KP2, BLOCK_L), dtype=tl.float32)
    db0 = tl.zeros((BLOCK_E, BLOCK_L), dtype=tl.float32)
    db1 = tl.zeros((BLOCK_E, BLOCK_L), dtype=tl.float32)
    for it in range(ITERS):
        offs_t = (tl.program_id(1) * ITERS + it) * BLOCK_L + tl.arange(0, BLOCK_L)
        x0 = _taps(x_ptr, x_row, offs_t, offs_k, 1, L, mask_e, K)
        x1 = _taps(x_ptr, x_row, offs_t, offs_k, -1, L, mask_e, K)
        pre0 = tl.sum(w0 * x0, axis=1) + b0
        pre1 = tl.sum(w1 * x1, axis=1) + b1
        mask = mask_e[:, None] & (offs_t < L)[None, :]
        ptrs = row[:, None] + offs_t[None, :]
        dpre0 = tl.load(du_ptr + ptrs, mask=mask, other=0.0).to(tl.float32) * _silu_grad(pre0)
        dpre1 = tl.load(du_ptr + far + ptrs, mask=mask, other=0.0).to(tl.float32) * _silu_grad(pre1)
        dty = dpre_ptr.dtype.element_ty
        tl.store(dpre_ptr + ptrs, dpre0.to(dty), mask=mask)
        tl.store(dpre_ptr + far + ptrs, dpre1.to(dty), mask=mask)
        acc0 += dpre0[:, None, :] * x0
        acc1 += dpre1[:, None, :] * x1
        db0 += dpre0
        db1 += dpre1

    program = i * tl.num_programs(1) + tl.program_id(1)
    part = dw_part_ptr + program * (2 * E * (K + 1)) + offs_e * (K + 1)
    mask_ek = mask_e[:, None] & (offs_k < K)[None, :]
    tl.store(part[:, None] + offs_k[None, :], tl.sum(acc0, axis=2), mask=mask_ek)
    tl.store(part[:, None] + E * (K + 1) + offs_k[None, :], tl.sum(acc1, axis=2), mask=mask_ek)
    tl.store(part + K, tl.sum(db0, axis=1), mask=mask_e)
    tl.store(part + E * (K + 1) + K, tl.sum(db1, axis=1), mask=mask_e)


@triton.jit
def _conv_bwd_x_kernel(
    dpre_ptr, w_ptr, dx_ptr,
    far, E, L, s_dx_n, s_dx_e,
    K: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_L: tl.constexpr,
):
    """dx[t] = sum_k w[0, k] dpre[0, t + (K-1) - k] + w[1, k] dpre[1, t - (K-1) + k]."""
    i, offs_e, mask_e = _channels(tl.program_id(0), E, BLOCK_E)
    offs_t = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)
    row = (i * E + offs_e) * L
    dx = tl.zeros((BLOCK_E, BLOCK_L), dtype=tl.float32)
    for k in tl.static_range(K):
        w0 = tl.load(w_ptr + offs_e * K + k, mask=mask_e, other=0.0).to(tl.float32)
        w1 = tl.load(w_ptr + (E + offs_e) * K + k, mask=mask_e, other=0.0).to(tl.float32)
        dx += w0[:, None] * _shifted(dpre_ptr, row, offs_t, K - 1 - k, L, mask_e)
        dx += w1[:, None] * _shifted(dpre_ptr + far, row, offs_t, k - (K - 1), L, mask_e)
    mask = mask_e[:, None] & (offs_t < L)[None, :]
    dx_row = i * s_dx_n + offs_e.to(tl.int64) * s_dx_e
    tl.store(dx_ptr + dx_row[:, None] + offs_t[None, :], dx.to(dx_ptr.dtype.element_ty), mask=mask)
