"""Autograd wrappers around the Triton selective-scan kernels (``genomamba.kernels``)."""

from __future__ import annotations

import os

import torch

from genomamba.kernels.selective_scan import _scan_bwd_kernel, _scan_fwd_kernel


#: Fill every output buffer with NaN before the kernels run (tests set this), so an
#: element a kernel forgets to write fails the comparison instead of reading stale memory.
POISON_OUTPUTS = False


def _alloc(shape_or_like, **kw):
    t = torch.empty_like(shape_or_like) if isinstance(shape_or_like, torch.Tensor) else torch.empty(shape_or_like, **kw)
    if POISON_OUTPUTS and t.dtype.is_floating_point:
        t.fill_(float("nan"))
    return t


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _launch_config(batch: int, dim: int, length: int, nstate: int, dim_per_group: int, n_dirs: int):
    """Tile sizes and warps. Small tiles under the interpreter, where every scan element
    is a Python call."""
    if _interpreting():
        block_d, block_t = 2, 8
    else:
        block_t = 32 if length >= 32 else max(16, _next_pow2(length))
        # enough programs for a few waves over the SMs before widening the channel block
        programs = lambda bd: n_dirs * batch * -(-dim // bd)  # noqa: E731
        block_d = 1
        while block_d < 4 and programs(block_d * 2) >= 132:
            block_d *= 2
    while dim_per_group % block_d:
        block_d //= 2
    block_d = max(block_d, 1)
    # no more threads than tile elements: Triton's scans on replicated layouts are not to be trusted
    warps = max(1, min(4, block_d * _next_pow2(nstate) * block_t // 32))
    return block_d, block_t, warps, 1


def _env_override(block_d, block_t, warps, stages):
    spec = os.environ.get("GENOMAMBA_SCAN_TILE")  # "BLOCK_D,BLOCK_T,WARPS[,STAGES]" for tuning runs
    if spec:
        vals = [int(v) for v in spec.split(",")]
        block_d, block_t, warps = vals[:3]
        stages = vals[3] if len(vals) > 3 else stages
    return block_d, block_t, warps, stages


class _ScanTriton(torch.autograd.Function):
    """Direction-stacked scan. u, delta: (R, b, d, L); A: (R, d, N); B, C: (R, b, g, N, L);
    D, bias: (R, d) or None; z: (R, b, d, L) or (1, b, d, L) shared, or None.
    Direction r is reversed when r xor rev_base is 1."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus, rev_base):
        R, batch, dim, length = u.shape
        nstate = A.shape[-1]
        groups = B.shape[2]
        u, delta, A, B, C = (t.contiguous() for t in (u, delta, A, B, C))
        z = None if z is None else z.contiguous()
        D = None if D is None else D.contiguous()
        delta_bias = None if delta_bias is None else delta_bias.contiguous()
        block_d, block_t, warps, stages = _env_override(*_launch_config(batch, dim, length, nstate, dim // groups, R))
        n_chunks = -(-length // block_t)
        save = any(ctx.needs_input_grad)
        out = _alloc(u)
        last = _alloc((R, batch, dim, nstate), device=u.device, dtype=torch.float32)
        hs = (_alloc((R, batch, dim, n_chunks, nstate), device=u.device, dtype=torch.float32)
              if save else last)
        grid = (batch * -(-dim // block_d), R)
        zs = _z_strides(z, R)
        _scan_fwd_kernel[grid](
            u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u,
            out, last, hs,
            batch, dim, length, n_chunks, dim // groups,
            u.stride(0), u.stride(1), u.stride(2),
            *zs,
            A.stride(0), B.stride(0), B.stride(1), B.stride(2), B.stride(3),
            0 if D is None else D.stride(0),
            rev_base,
            NSTATE=nstate, NSTATE_P2=_next_pow2(nstate), BLOCK_D=block_d, BLOCK_T=block_t,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(softplus), SAVE_STATES=save, STAGES=stages, num_warps=warps,
        )
        if save:
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, hs)
            ctx.config = (bool(softplus), rev_base, block_d, block_t, warps, stages, n_chunks)
        return out, last

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, B, C, D, z, delta_bias, hs = ctx.saved_tensors
        softplus, rev_base, block_d, block_t, warps, stages, n_chunks = ctx.config
        R, batch, dim, length = u.shape
        nstate = A.shape[-1]
        groups = B.shape[2]
        dout = dout.contiguous()
        du = _alloc(u)
        ddelta = _alloc(delta)
        dz = _alloc(z) if z is not None and z.shape[0] == R else None
        if z is not None and dz is None:  # z shared by directions: one buffer per direction, summed
            dz = _alloc((R, *z.shape[1:]), device=z.device, dtype=z.dtype)
        dB = torch.zeros(B.shape, device=B.device, dtype=torch.float32)
        dC = torch.zeros(C.shape, device=C.device, dtype=torch.float32)
        dA = _alloc((R, batch, dim, nstate), device=u.device, dtype=torch.float32)
        dD = _alloc((R, batch, dim), device=u.device, dtype=torch.float32) if D is not None else None
        dbias = (_alloc((R, batch, dim), device=u.device, dtype=torch.float32)
                 if delta_bias is not None else None)
        has_dlast = dlast is not None
        grid = (batch * -(-dim // block_d), R)
        _scan_bwd_kernel[grid](
            u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, hs,
            dout, dlast.contiguous() if has_dlast else u,
            du, ddelta, dz if dz is not None else u, dB, dC, dA,
            dD if dD is not None else dA, dbias if dbias is not None else dA,
            batch, dim, length, n_chunks, dim // groups,
            u.stride(0), u.stride(1), u.stride(2),
            *_z_strides(z, R), 0 if dz is None else dz.stride(0),
            A.stride(0), B.stride(0), B.stride(1), B.stride(2), B.stride(3),
            0 if D is None else D.stride(0),
            rev_base,
            NSTATE=nstate, NSTATE_P2=_next_pow2(nstate), BLOCK_D=block_d, BLOCK_T=block_t,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=softplus, HAS_DLAST=has_dlast, STAGES=stages, num_warps=warps,
        )
        if z is not None and z.shape[0] != R:
            dz = dz.sum(0, keepdim=True)
        return (du, ddelta, dA.sum(1).to(A.dtype), dB.to(B.dtype), dC.to(C.dtype),
                None if D is None else dD.sum(1).to(D.dtype), dz,
                None if delta_bias is None else dbias.sum(1).to(delta_bias.dtype), None, None)


def _z_strides(z, R):
    if z is None:
        return (0, 0, 0)
    return (z.stride(0) if z.shape[0] == R else 0, z.stride(1), z.stride(2))


def _check(u, delta, A, B, C):
    if u.shape[-1] == 0:
        raise ValueError("selective_scan needs L >= 1")
    if B.dim() != C.dim() or B.shape != C.shape:
        raise ValueError(f"B and C must have the same shape, got {tuple(B.shape)} and {tuple(C.shape)}")


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          reverse=False, return_last_state=False):
    """Single-direction Triton scan (see ``genomamba.ops.selective_scan``)."""
    _check(u, delta, A, B, C)
    if B.dim() == 3:
        B, C = B.unsqueeze(1), C.unsqueeze(1)
    out, last = _ScanTriton.apply(
        u.unsqueeze(0), delta.unsqueeze(0), A.unsqueeze(0), B.unsqueeze(0), C.unsqueeze(0),
        None if D is None else D.unsqueeze(0), None if z is None else z.unsqueeze(0),
        None if delta_bias is None else delta_bias.unsqueeze(0), bool(delta_softplus), int(bool(reverse)),
    )
    return (out[0], last[0]) if return_last_state else out[0]


def selective_scan_bidirectional_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                                        delta_softplus=False, combine="add"):
    """Fused BiMamba scan: direction 0 forward, direction 1 reverse, one launch."""
    _check(u[0], delta[0], A[0], B[0], C[0])
    if B.dim() == 4:
        B, C = B.unsqueeze(2), C.unsqueeze(2)
    if z is not None and z.dim() == 3:
        z = z.unsqueeze(0)  # shared by both directions (stride 0 over the direction axis)
    out, _ = _ScanTriton.apply(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), 0)
    return out[0] + out[1] if combine == "add" else out
