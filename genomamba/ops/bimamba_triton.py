"""BiMamba ("add" strategy) as one autograd function on the Triton kernels.

The same computation as ``BiMamba.forward`` (in_proj, both directions' convolution +
SiLU, x_proj, dt_proj, the fused bidirectional scan, out_proj), with the memory of
mamba-ssm's ``mamba_inner_fn``: the forward keeps only

    h       the mixer's input in the compute dtype         (n, L, d_model)
    x_dbl   x_proj's output (dt, B, C) of both directions  (2, n, dt_rank + 2N, L)
    y       the scan output, out_proj's input              (n, d_inner, L)
    the scan's segment start states                       (L / 128, N, 2 n d_inner) fp32

and the backward recomputes xz, the convolutions and delta (cheap: two small matmuls
and a memory-bound kernel). Activations are laid out (n, channels, L) from in_proj on,
as the kernels read them, so nothing is transposed in memory. Matmuls run in the
compute dtype (the autocast dtype when autocast is on, else the input's) with fp32
accumulation; weight gradients are returned in the weights' dtype.
"""

from __future__ import annotations

import os

import torch

from genomamba.ops.conv_triton import conv_silu_backward, conv_silu_forward
from genomamba.ops.scan_triton import scan_backward, scan_forward, scan_inputs


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def _sum_batch(x: torch.Tensor, dtype: torch.dtype, dim: int = 0) -> torch.Tensor:
    """Sum of per-sequence weight gradients over the batch axis ``dim``, in ``dtype``."""
    return x.sum(dim, dtype=torch.float32).to(dtype)


class BiMambaFunction(torch.autograd.Function):
    """hidden (n, L, d_model) -> (n, L, d_model). Weights: in_w (2E, d_model); conv_w (2, E, K);
    conv_b (2, E) or None; x_proj_w (2, r + 2N, E); dt_w (2, E, r); dt_b (2, E); A (2, E, N);
    D (2, E); out_w (d_model, E). Direction 0 runs forward, direction 1 in reverse."""

    @staticmethod
    def forward(ctx, hidden, in_w, conv_w, conv_b, x_proj_w, dt_w, dt_b, A, D, out_w, grad=True):
        cd = compute_dtype(hidden)
        h = hidden.to(cd)
        d_inner = out_w.shape[1]
        # nothing is kept for inference (ctx.needs_input_grad is set under no_grad too, so the
        # caller says whether autograd is on: ``bimamba``)
        save = grad and any(ctx.needs_input_grad)
        if not save:
            return _inference_forward(h, in_w, conv_w, conv_b, x_proj_w, dt_w, dt_b, A, D, out_w)
        x, z, u, x_dbl, delta, inputs = _pre_scan(h, in_w, conv_w, conv_b, x_proj_w, dt_w, dt_b, A, D, d_inner)
        out, _, state = scan_forward(*inputs, True, 0, save=save, add_directions=True)
        y = out[0]
        if save:
            hs, ctx.scan_config = state
            ctx.hidden_dtype = hidden.dtype
            ctx.save_for_backward(h, x_dbl, y, hs, in_w, conv_w, conv_b, x_proj_w, dt_w, dt_b, A, D, out_w)
        return torch.matmul(y.transpose(1, 2), out_w.to(cd).t())

    @staticmethod
    def backward(ctx, dres):
        h, x_dbl, y, hs, in_w, conv_w, conv_b, x_proj_w, dt_w, dt_b, A, D, out_w = ctx.saved_tensors
        cd = h.dtype
        d_inner = out_w.shape[1]
        dres = dres.to(cd)
        x, z, u, _, delta, inputs = _pre_scan(h, in_w, conv_w, conv_b, x_proj_w, dt_w, dt_b, A, D, d_inner,
                                              x_dbl=x_dbl)
        d_out_w = _sum_batch(torch.matmul(dres.transpose(1, 2), y.transpose(1, 2)), out_w.dtype)
        dy = torch.matmul(out_w.to(cd).t(), dres.transpose(1, 2))  # (n, E, L)
        du, ddelta, dA, dB, dC, dD, dz, d_dt_b = scan_backward(*inputs, hs, ctx.scan_config,
                                                               dy.expand(2, *dy.shape), None)
        del delta, dy
        r = dt_w.shape[-1]
        dt = x_dbl[:, :, :r]
        d_dt = torch.matmul(dt_w.to(cd).transpose(1, 2).unsqueeze(1), ddelta)  # (2, n, r, L)
        d_dt_w = _sum_batch(torch.matmul(ddelta, dt.transpose(2, 3)), dt_w.dtype, dim=1)
        del ddelta
        dx_dbl = torch.cat([d_dt, dB[:, :, 0], dC[:, :, 0]], dim=2)  # (2, n, r + 2N, L)
        du.add_(torch.matmul(x_proj_w.to(cd).transpose(1, 2).unsqueeze(1), dx_dbl))
        d_x_proj_w = _sum_batch(torch.matmul(dx_dbl, u.transpose(2, 3)), x_proj_w.dtype, dim=1)
        del u, dx_dbl
        dxz = torch.empty((h.shape[0], 2 * d_inner, h.shape[1]), device=h.device, dtype=cd)
        d_conv_w, d_conv_b = conv_silu_backward(x, conv_w, conv_b, du, dxz[:, :d_inner])
        dxz[:, d_inner:] = dz[0]
        d_in_w = _sum_batch(torch.matmul(dxz, h), in_w.dtype)
        dhidden = torch.matmul(dxz.transpose(1, 2), in_w.to(cd)).to(ctx.hidden_dtype)
        return (dhidden, d_in_w, d_conv_w.to(conv_w.dtype),
                None if conv_b is None else d_conv_b.to(conv_b.dtype),
                d_x_proj_w, d_dt_w, d_dt_b, dA, dD, d_out_w, None)


def bimamba(hidden, in_w, conv_w, conv_b, x_proj_w, dt_w, dt_b, A, D, out_w):
    """``BiMambaFunction``, saving what the backward needs only where autograd records."""
    return BiMambaFunction.apply(hidden, in_w, conv_w, conv_b, x_proj_w, dt_w, dt_b, A, D, out_w,
                                 torch.is_grad_enabled())


#: Row length multiple of the inference forward's activations for windows longer than
#: PAD_ROWS_ABOVE: an odd window (131,071 bases) is laid out in rows of 131,072, so that the
#: scan's loads and stores are whole vectors. Measured on the H200 (default PS model, LLR
#: scoring, 2026-12-03): 131k windows 8.09 -> 9.21 SNVs/s, 16k even (71.0 / 71.2), 1k slower
#: (1,663 -> 1,483: the padded copy of the hidden states and the strided output cost more
#: than the scan gains at batch 256), hence the threshold. GENOMAMBA_PAD_ROWS_ABOVE overrides
#: it (for A/B runs: 0 pads every odd window).
ROW_MULTIPLE = 16
PAD_ROWS_ABOVE = int(os.environ.get("GENOMAMBA_PAD_ROWS_ABOVE", "16384"))


def _inference_forward(h, in_w, conv_w, conv_b, x_proj_w, dt_w, dt_b, A, D, out_w):
    """The forward without autograd, channels outermost: every activation from in_proj to the
    scan output is laid out (channels, n, L) and viewed as (n, channels, L), so x_proj, dt_proj
    and out_proj are each one (channels x n L) matrix product per direction, where the (n, E, L)
    layout the backward reads needs a batched product per sequence (for which cuBLAS picks
    kernels several times slower). The same arithmetic as the saving path, in other memory.

    Long rows are padded to a multiple of ROW_MULTIPLE positions (zeros in h, hence in x and z;
    the convolution reads and writes only the true positions, u's padding is zeroed), and
    the scan is told the true length; the padded positions' outputs are dropped."""
    cd = h.dtype
    n, length, d_model = h.shape
    E, r, nstate = out_w.shape[1], dt_w.shape[-1], A.shape[-1]
    padded = -(-length // ROW_MULTIPLE) * ROW_MULTIPLE if length > PAD_ROWS_ABOVE else length
    if padded != length:
        h = torch.nn.functional.pad(h, (0, 0, 0, padded - length))
    rows = n * padded
    xz = torch.matmul(in_w.to(cd), h.reshape(rows, d_model).t()).view(-1, n, padded).transpose(0, 1)
    x, z = xz[:, :E], xz[:, E:]
    u = h.new_empty((2, E, n, padded)).transpose(1, 2)  # (2, n, E, padded)
    conv_silu_forward(x[..., :length], conv_w, conv_b, out=u[..., :length])
    if padded != length:
        u[..., length:] = 0
    x_dbl = torch.matmul(x_proj_w.to(cd), u.transpose(1, 2).reshape(2, E, rows))  # (2, r + 2N, n padded)
    delta = torch.matmul(dt_w.to(cd), x_dbl[:, :r])  # (2, E, n padded)

    def per_row(t):  # (2, channels, n padded) -> (2, n, channels, padded), a view
        return t.view(2, t.shape[1], n, padded).transpose(1, 2)

    B, C = per_row(x_dbl[:, r:r + nstate]), per_row(x_dbl[:, r + nstate:])
    inputs = scan_inputs(per_row(u.transpose(1, 2).reshape(2, E, rows)), per_row(delta), A, B.unsqueeze(2),
                         C.unsqueeze(2), D, z.unsqueeze(0), dt_b, keep_layout=True)
    out, _, _ = scan_forward(*inputs, True, 0, save=False, valid_length=length, add_directions=True)
    y = out[0]  # both directions' sum, (n, E, padded) with strides (padded, n padded, 1): (E, n padded) in memory
    res = torch.matmul(y.transpose(1, 2).reshape(rows, E), out_w.to(cd).t()).view(n, padded, d_model)
    return res[:, :length]


def _pre_scan(h, in_w, conv_w, conv_b, x_proj_w, dt_w, dt_b, A, D, d_inner, x_dbl=None):
    """in_proj, convolutions, x_proj (unless given) and dt_proj: the scan's inputs."""
    cd = h.dtype
    # one (2E, d) x (d, n L) product laid out (2E, n, L) and viewed as (n, 2E, L) (unit stride
    # along L, as the kernels read it): far faster than the batched product of the shared
    # weight with every sequence, for which cuBLAS picks a slow kernel
    n, length, d_model = h.shape
    xz = torch.matmul(in_w.to(cd), h.reshape(n * length, d_model).t()).view(-1, n, length).transpose(0, 1)
    x, z = xz[:, :d_inner], xz[:, d_inner:]
    u = conv_silu_forward(x, conv_w, conv_b)  # (2, n, E, L)
    if x_dbl is None:
        x_dbl = torch.matmul(x_proj_w.to(cd).unsqueeze(1), u)  # (2, n, r + 2N, L)
    r, nstate = dt_w.shape[-1], A.shape[-1]
    dt, B, C = torch.split(x_dbl, [r, nstate, nstate], dim=2)
    delta = torch.matmul(dt_w.to(cd).unsqueeze(1), dt)  # (2, n, E, L)
    inputs = scan_inputs(u, delta, A, B.unsqueeze(2), C.unsqueeze(2), D, z.unsqueeze(0), dt_b)
    return x, z, u, x_dbl, delta, inputs
