"""Chunked PyTorch selective scan: the CPU path, and the fallback everywhere.

The sequence is cut into blocks of ``T`` steps. Inside a block the recurrence
h_t = a_t h_{t-1} + x_t is solved for all steps at once by a Hillis-Steele scan
over (a, x) pairs (log2 T vectorised steps, only products of decays <= 1, so it
cannot overflow); blocks are chained through their end states. Only one block's
(batch, dim, T, N) tensors exist at a time, and ``T`` is chosen so that they stay
a few MB whatever L is.

The backward is a custom autograd function: the forward keeps the state at each
block start (batch, dim, N per block), and the backward walks the blocks in the
opposite order, recomputes one block's states, runs the adjoint recurrence as a
scan in the other direction and passes the gradient of the block's start state
on to the previous block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Elements (batch * dim * T * N) in one block's working tensors: a few MB on the CPU;
# larger on a GPU, where each block costs tens of kernel launches.
_BLOCK_ELEMENTS = 1 << 21
_BLOCK_ELEMENTS_CUDA = 1 << 24


def _block_length(batch: int, dim: int, nstate: int, length: int, cuda: bool = False) -> int:
    budget = max(_BLOCK_ELEMENTS, _BLOCK_ELEMENTS_CUDA) if cuda else _BLOCK_ELEMENTS
    t = max(16, budget // max(1, batch * dim * nstate))
    t = 1 << (t.bit_length() - 1)  # power of two
    return max(1, min(t, length))


def _hillis_steele(a, x, reverse: bool):
    """Inclusive scan of pairs along dim -2: returns (prod a, h) with h_t = a_t h_{t-1} + x_t."""
    steps = a.shape[-2]
    k = 1
    while k < steps:
        if not reverse:
            x = torch.cat([x[..., :k, :], torch.addcmul(x[..., k:, :], a[..., k:, :], x[..., :-k, :])], dim=-2)
            a = torch.cat([a[..., :k, :], a[..., k:, :] * a[..., :-k, :]], dim=-2)
        else:
            x = torch.cat([torch.addcmul(x[..., :-k, :], a[..., :-k, :], x[..., k:, :]), x[..., -k:, :]], dim=-2)
            a = torch.cat([a[..., :-k, :] * a[..., k:, :], a[..., -k:, :]], dim=-2)
        k *= 2
    return a, x


def _as_groups(X, dim):
    """B or C (batch, N, L) / (batch, g, N, L) -> (batch, g, 1, L, N)."""
    if X.dim() == 3:
        X = X.unsqueeze(1)
    return X.transpose(-1, -2).unsqueeze(2)


def _block_terms(u, delta, A, B, delta_bias, softplus, compute_dtype):
    """Per-step decay a and input x of one block, as (b, g, d/g, T, N) tensors, with
    delta after bias/softplus (b, d, T) and the raw pre-softplus delta."""
    b, d, T = u.shape
    n = A.shape[1]
    g = 1 if B.dim() == 3 else B.shape[1]
    raw = delta.to(compute_dtype)
    if delta_bias is not None:
        raw = raw + delta_bias.to(compute_dtype)[None, :, None]
    dt = F.softplus(raw) if softplus else raw
    dt5 = dt.view(b, g, d // g, T, 1)
    a = torch.exp(dt5 * A.to(compute_dtype).view(1, g, d // g, 1, n))
    x = (dt5 * u.to(compute_dtype).view(b, g, d // g, T, 1)) * _as_groups(B.to(compute_dtype), d)
    return a, x, dt, raw


def _block(u, delta, A, B, C, D, z, delta_bias, softplus, reverse, h0, compute_dtype, keep=False):
    """One block. u, delta, z: (b, d, T); B, C: (b, g, N, T) or (b, N, T); h0: (b, d, N).
    Returns (out (b, d, T) in compute dtype, h_end (b, d, N)), plus the intermediates the
    backward needs when ``keep``."""
    b, d, T = u.shape
    n = A.shape[1]
    g = 1 if B.dim() == 3 else B.shape[1]
    a, x, dt, raw = _block_terms(u, delta, A, B, delta_bias, softplus, compute_dtype)
    P, H = _hillis_steele(a, x, reverse)
    H = H + P * h0.view(b, g, d // g, 1, n)
    y = (H * _as_groups(C.to(compute_dtype), d)).sum(-1).reshape(b, d, T)
    h_end = (H[..., 0, :] if reverse else H[..., -1, :]).reshape(b, d, n)
    if D is not None:
        y = y + u.to(compute_dtype) * D.to(compute_dtype)[None, :, None]
    out = y * F.silu(z.to(compute_dtype)) if z is not None else y
    if keep:
        return out, h_end, (a, x, H, y, dt, raw)
    return out, h_end


def _block_backward(u, A, B, C, D, z, softplus, reverse, dout, dh_end, saved, compute_dtype):
    """Gradients of one block from its recomputed intermediates (no autograd).

    The adjoint of h_t = a_t h_{t-1} + x_t is dh_t = C_t dy_t + a_{t+1} dh_{t+1}
    (next/previous in scan order), a scan in the opposite direction."""
    a, x, H, y, dt, raw = saved
    b, d, T = u.shape
    n = A.shape[1]
    g = a.shape[1]
    u_ = u.to(compute_dtype)
    dout = dout.to(compute_dtype)
    if z is not None:
        zc = z.to(compute_dtype)
        sig = torch.sigmoid(zc)
        dz = dout * y * sig * (1 + zc * (1 - sig))
        dy = dout * zc * sig
    else:
        dz, dy = None, dout
    dy5 = dy.view(b, g, d // g, T, 1)
    grad = _as_groups(C.to(compute_dtype), d) * dy5
    last = 0 if reverse else T - 1
    grad[..., last, :] += dh_end.view(b, g, d // g, n)
    # decay of the next step in scan order; 1 past the block end (the carry enters via grad)
    if reverse:
        a_next = torch.cat([torch.ones_like(a[..., :1, :]), a[..., :-1, :]], dim=-2)
    else:
        a_next = torch.cat([a[..., 1:, :], torch.ones_like(a[..., :1, :])], dim=-2)
    _, dh = _hillis_steele(a_next, grad, not reverse)
    first = T - 1 if reverse else 0
    dh0 = (a[..., first, :] * dh[..., first, :]).reshape(b, d, n)
    dt5 = dt.view(b, g, d // g, T, 1)
    B5 = _as_groups(B.to(compute_dtype), d)
    dha = dh * (H - x)  # dh_t * a_t * h_{t-1}
    A5 = A.to(compute_dtype).view(1, g, d // g, 1, n)
    dhB = (dh * B5).sum(-1)  # (b, g, d/g, T)
    ddt = (dha * A5).sum(-1) + dhB * u_.view(b, g, d // g, T)
    dA = (dha * dt5).sum((0, 3)).reshape(d, n)
    du = (dhB * dt.view(b, g, d // g, T)).reshape(b, d, T)
    dD = None
    if D is not None:
        du = du + D.to(compute_dtype)[None, :, None] * dy
        dD = (dy * u_).sum((0, 2))
    dB = (dh * (dt5 * u_.view(b, g, d // g, T, 1))).sum(2).transpose(-1, -2)  # (b, g, N, T)
    dC = (H * dy5).sum(2).transpose(-1, -2)
    if B.dim() == 3:
        dB, dC = dB[:, 0], dC[:, 0]
    ddt = ddt.reshape(b, d, T)
    if softplus:
        ddt = ddt * torch.sigmoid(raw)
    return du, ddt, dA, dB, dC, dD, dz, ddt.sum((0, 2)), dh0


def _block_ranges(length, T, reverse):
    starts = list(range(0, length, T))
    ranges = [(s, min(s + T, length)) for s in starts]
    return ranges[::-1] if reverse else ranges


class _SelectiveScanTorch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus, reverse):
        compute_dtype = torch.promote_types(u.dtype, torch.float32)
        b, d, length = u.shape
        T = _block_length(b, d, A.shape[1], length, u.is_cuda)
        h = u.new_zeros(b, d, A.shape[1], dtype=compute_dtype)
        out = torch.empty_like(u)
        starts = []
        for s, e in _block_ranges(length, T, reverse):
            starts.append(h)
            y, h = _block(u[..., s:e], delta[..., s:e], A, B[..., s:e], C[..., s:e], D,
                          None if z is None else z[..., s:e], delta_bias, softplus, reverse, h,
                          compute_dtype)
            out[..., s:e] = y
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, *starts)
        ctx.config = (softplus, reverse, T, compute_dtype)
        return out, h

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, B, C, D, z, delta_bias, *starts = ctx.saved_tensors
        softplus, reverse, T, compute_dtype = ctx.config
        length = u.shape[-1]
        need = ctx.needs_input_grad
        du = torch.empty_like(u) if need[0] else None
        ddelta = torch.empty_like(delta) if need[1] else None
        dB = torch.empty_like(B) if need[3] else None
        dC = torch.empty_like(C) if need[4] else None
        dz = torch.empty_like(z) if (z is not None and need[6]) else None
        dA = torch.zeros_like(A, dtype=compute_dtype)
        dD = None if D is None else torch.zeros_like(D, dtype=compute_dtype)
        dbias = None if delta_bias is None else torch.zeros_like(delta_bias, dtype=compute_dtype)
        dh = dlast.to(compute_dtype) if dlast is not None else torch.zeros_like(starts[0])
        ranges = _block_ranges(length, T, reverse)
        for (s, e), h0 in zip(reversed(ranges), reversed(starts)):
            zb = None if z is None else z[..., s:e]
            _, _, saved = _block(u[..., s:e], delta[..., s:e], A, B[..., s:e], C[..., s:e], D, zb,
                                 delta_bias, softplus, reverse, h0, compute_dtype, keep=True)
            gu, gdelta, gA, gB, gC, gD, gz, gbias, dh = _block_backward(
                u[..., s:e], A, B[..., s:e], C[..., s:e], D, zb, softplus, reverse,
                dout[..., s:e], dh, saved, compute_dtype)
            if du is not None:
                du[..., s:e] = gu
            if ddelta is not None:
                ddelta[..., s:e] = gdelta
            dA += gA
            if dB is not None:
                dB[..., s:e] = gB
            if dC is not None:
                dC[..., s:e] = gC
            if dD is not None:
                dD += gD
            if dz is not None:
                dz[..., s:e] = gz
            if dbias is not None:
                dbias += gbias
        return (du, ddelta, dA.to(A.dtype), dB, dC,
                None if dD is None else dD.to(D.dtype), dz,
                None if dbias is None else dbias.to(delta_bias.dtype), None, None)


def selective_scan_torch(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                         reverse=False, return_last_state=False):
    """Chunked PyTorch selective scan (see ``genomamba.ops.selective_scan``)."""
    if u.shape[-1] == 0:
        raise ValueError("selective_scan needs L >= 1")
    out, last = _SelectiveScanTorch.apply(u, delta, A, B, C, D, z, delta_bias,
                                          bool(delta_softplus), bool(reverse))
    return (out, last) if return_last_state else out


def selective_scan_bidirectional_torch(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                                       delta_softplus=False, combine="add"):
    """Two single-direction torch scans (direction 0 forward, 1 reverse)."""
    outs = []
    for k in range(2):
        zk = None if z is None else (z if z.dim() == 3 else z[k])
        outs.append(selective_scan_torch(
            u[k], delta[k], A[k], B[k], C[k], None if D is None else D[k], zk,
            None if delta_bias is None else delta_bias[k], delta_softplus, k == 1, False))
    return outs[0] + outs[1] if combine == "add" else torch.stack(outs)
