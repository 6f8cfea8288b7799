"""Chunked PyTorch selective scan: the CPU path, and the fallback everywhere.

The sequence is cut into blocks of ``T`` steps. Inside a block the recurrence
h_t = a_t h_{t-1} + x_t is solved for all steps at once by a Hillis-Steele scan
over (a, x) pairs (log2 T vectorised steps, only products of decays <= 1, so it
cannot overflow); blocks are chained through their end states. Only one block's
(batch, dim, T, N) tensors exist at a time, and ``T`` is chosen so that they stay
a few MB whatever L is.

The backward is a custom autograd function: the forward keeps the state at each
block start (batch, dim, N per block), and the backward walks the blocks in the
opposite order, recomputing one block under autograd and pulling the gradient
of its start state into the previous block.
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


def _block(u, delta, A, B, C, D, z, delta_bias, softplus, reverse, h0, compute_dtype):
    """One block, differentiable. u, delta, z: (b, d, T); B, C: (b, g, N, T) or (b, N, T);
    h0: (b, d, N). Returns (out (b, d, T) in compute dtype, h_end (b, d, N))."""
    b, d, T = u.shape
    n = A.shape[1]
    g = 1 if B.dim() == 3 else B.shape[1]
    u_ = u.to(compute_dtype)
    dt = delta.to(compute_dtype)
    if delta_bias is not None:
        dt = dt + delta_bias.to(compute_dtype)[None, :, None]
    if softplus:
        dt = F.softplus(dt)
    # (b, g, d/g, T, N) views so that groups broadcast against their channels.
    dt5 = dt.view(b, g, d // g, T, 1)
    a = torch.exp(dt5 * A.to(compute_dtype).view(1, g, d // g, 1, n))
    x = (dt5 * u_.view(b, g, d // g, T, 1)) * _as_groups(B.to(compute_dtype), d)
    P, H = _hillis_steele(a, x, reverse)
    H = H + P * h0.view(b, g, d // g, 1, n)
    y = (H * _as_groups(C.to(compute_dtype), d)).sum(-1).reshape(b, d, T)
    h_end = (H[..., 0, :] if reverse else H[..., -1, :]).reshape(b, d, n)
    if D is not None:
        y = y + u_ * D.to(compute_dtype)[None, :, None]
    if z is not None:
        y = y * F.silu(z.to(compute_dtype))
    return y, h_end


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
        grads = {k: None for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")}
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
            with torch.enable_grad():
                leaves = [
                    u[..., s:e].detach().requires_grad_(),
                    delta[..., s:e].detach().requires_grad_(),
                    A.detach().requires_grad_(),
                    B[..., s:e].detach().requires_grad_(),
                    C[..., s:e].detach().requires_grad_(),
                    None if D is None else D.detach().requires_grad_(),
                    None if z is None else z[..., s:e].detach().requires_grad_(),
                    None if delta_bias is None else delta_bias.detach().requires_grad_(),
                    h0.detach().requires_grad_(),
                ]
                y, h_end = _block(*leaves[:8], softplus, reverse, leaves[8], compute_dtype)
                inputs = [x for x in leaves if x is not None]
                g = torch.autograd.grad((y, h_end), inputs, (dout[..., s:e].to(compute_dtype), dh),
                                        allow_unused=True)
            g = iter(g)
            gl = [None if x is None else next(g) for x in leaves]
            if du is not None:
                du[..., s:e] = gl[0]
            if ddelta is not None:
                ddelta[..., s:e] = gl[1]
            dA += gl[2]
            if dB is not None:
                dB[..., s:e] = gl[3]
            if dC is not None:
                dC[..., s:e] = gl[4]
            if dD is not None:
                dD += gl[5]
            if dz is not None:
                dz[..., s:e] = gl[6]
            if dbias is not None:
                dbias += gl[7]
            dh = gl[8]
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
