"""BiMamba's two depthwise convolutions with SiLU, on the Triton kernels of
``genomamba.ops.kernels.conv`` (no autograd: the fused BiMamba function calls these).

    u = conv_silu_forward(x, weight, bias)            x (n, E, L) -> u (2, n, E, L)
    dweight, dbias = conv_silu_backward(x, weight, bias, du, dx)

Direction 0 is causal, direction 1 anti-causal with its kernel reversed, as
``SSMDirection.conv`` in ``genomamba.model.mixer`` (which is the reference the tests use).
"""

from __future__ import annotations

import torch
from triton import cdiv, next_power_of_2

from genomamba.ops.kernels.conv import _conv_bwd_x_kernel, _conv_silu_bwd_pre_kernel, _conv_silu_fwd_kernel
from genomamba.ops.backend import interpreting


def _blocks():
    """Tiles (BLOCK_E, BLOCK_L) of the forward, of the backward's first pass (with its time
    tiles per program, ITERS) and of dx's gather, and the warps: measured on the H100
    (`benchmarks/RESULTS.md`). Tiny under the interpreter, so several tiles and programs
    meet at test sizes."""
    if interpreting():
        return dict(fwd=(2, 4), bwd_pre=(2, 4, 2), gather=(2, 8), warps=1)
    return dict(fwd=(1, 1024), bwd_pre=(2, 256, 16), gather=(4, 512), warps=4)


def _check(x, weight):
    if x.dim() != 3 or not _unit_stride(x):
        raise ValueError(f"x must be (n, E, L) with unit stride along L, got shape {tuple(x.shape)} "
                         f"strides {x.stride()}")
    if weight.dim() != 3 or weight.shape[:2] != (2, x.shape[1]):
        raise ValueError(f"weight must be (2, {x.shape[1]}, K), got {tuple(weight.shape)}")


def conv_silu_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      out: torch.Tensor | None = None) -> torch.Tensor:
    """u (2, n, E, L) in x's dtype: silu of the causal (0) and anti-causal (1) convolutions.
    ``out``: write into this (2, n, E, L) tensor instead (any strides, unit stride along L)."""
    _check(x, weight)
    n, E, L = x.shape
    K = weight.shape[-1]
    blocks = _blocks()
    (block_e, block_l), warps = blocks["fwd"], blocks["warps"]
    u = torch.empty((2, n, E, L), device=x.device, dtype=x.dtype) if out is None else out
    if u.shape != (2, n, E, L) or not _unit_stride(u):
        raise ValueError(f"out must be (2, {n}, {E}, {L}) with unit stride along L, got {tuple(u.shape)} "
                         f"strides {u.stride()}")
    weight = weight.contiguous()
    _conv_silu_fwd_kernel[(n * cdiv(E, block_e), cdiv(L, block_l))](
        x, weight, bias.contiguous() if bias is not None else weight, u, u.stride(0), E, L, x.stride(0), x.stride(1),
        u.stride(1), u.stride(2),
        K=K, KP2=next_power_of_2(K), HAS_BIAS=bias is not None, BLOCK_E=block_e, BLOCK_L=block_l, num_warps=warps,
    )
    return u


def conv_silu_backward(x, weight, bias, du, dx):
    """Gradients of ``conv_silu_forward``: writes dx (n, E, L; any row strides, unit stride
    along L) and returns (dweight (2, E, K), dbias (2, E) or None), fp32."""
    _check(x, weight)
    n, E, L = x.shape
    K = weight.shape[-1]
    if not _unit_stride(dx) or dx.shape != x.shape:
        raise ValueError("dx must be shaped like x with unit stride along L")
    blocks = _blocks()
    (pre_block_e, pre_block_l, iters), (block_e, block_l), warps = blocks["bwd_pre"], blocks["gather"], blocks["warps"]
    weight = weight.contiguous()
    du = du.contiguous()
    dpre = torch.empty(du.shape, device=du.device, dtype=torch.float32)  # fp32: rounded once, in dx
    n_span = cdiv(L, pre_block_l * iters)
    parts = torch.empty((n, n_span, 2, E, K + 1), device=x.device, dtype=torch.float32)
    _conv_silu_bwd_pre_kernel[(n * cdiv(E, pre_block_e), n_span)](
        x, weight, bias.contiguous() if bias is not None else weight, du, dpre, parts,
        n * E * L, E, L, x.stride(0), x.stride(1),
        K=K, KP2=next_power_of_2(K), HAS_BIAS=bias is not None, BLOCK_E=pre_block_e, BLOCK_L=pre_block_l,
        ITERS=iters, num_warps=warps,
    )
    grid = (n * cdiv(E, block_e), cdiv(L, block_l))
    _conv_bwd_x_kernel[grid](
        dpre, weight, dx, n * E * L, E, L, dx.stride(0), dx.stride(1),
        K=K, BLOCK_E=block_e, BLOCK_L=block_l, num_warps=warps,
    )
    sums = parts.sum((0, 1))
    return sums[..., :K], (sums[..., K] if bias is not None else None)


def _unit_stride(t):
    return t.shape[-1] <= 1 or t.stride(-1) == 1
