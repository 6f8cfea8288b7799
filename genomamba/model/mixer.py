"""Mamba-1 mixers: ``MambaMixer`` (one direction) and ``BiMamba`` (Caduceus's BiMamba).

A mixer maps (batch, L, d_model) to (batch, L, d_model):

    x, z = in_proj(h)                          (no bias; d_model -> 2 * d_inner)
    x = silu(depthwise_conv(x))                (causal; anti-causal for the reverse direction)
    dt, B, C = x_proj(x)                       (dt_rank, d_state, d_state)
    y = selective_scan(x, dt_proj.weight @ dt, A = -exp(A_log), B, C, D, z,
                       delta_bias = dt_proj.bias, delta_softplus = True)
    out = out_proj(y)                          (no bias)

The reverse direction never flips activations: its convolution pads on the right
with the kernel reversed and its scan runs from t = L-1 to 0, which is exactly
flip -> causal mixer -> flip with the same weights (so a Caduceus ``mamba_rev``
state dict has the same meaning here).

``BiMamba`` ties in_proj and out_proj between its directions (the rest, i.e. conv,
x_proj, dt_proj, A_log and D, is separate); with ``bidirectional_weight_tie: false``
the reverse direction has its own, ``rev_in_proj`` and ``rev_out_proj``. With ``strategy="add"`` it runs both
scans in one ``selective_scan_bidirectional`` call (z shared) and applies out_proj
once to their sum; with ``"mul"`` it multiplies out_proj of each direction. On the
Triton backend the "add" mixer is one autograd function
(``genomamba.ops.bimamba_triton``) that keeps a fraction of the activations and
recomputes the rest in the backward; the module code below is the reference it is
tested against.

Dtypes: the projections and convolution run in the ambient dtype (bf16 under
autocast), so the scan gets u, delta, z, B, C in that dtype and A, D, delta_bias in
float32 (float64 for a float64 model).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from genomamba.ops import resolve_backend, selective_scan, selective_scan_bidirectional
from genomamba.ops.conv_ref import depthwise_conv_ref


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


class SSMDirection(nn.Module):
    """The per-direction parameters of a Mamba mixer: depthwise conv, x_proj, dt_proj,
    A_log and D. ``reverse=True`` makes its convolution anti-causal; the caller runs
    its scan in reverse."""

    def __init__(self, config, reverse: bool = False):
        super().__init__()
        d_inner, d_state, dt_rank = config.d_inner, config.d_state, config.dt_rank_value
        self.reverse = reverse
        self.d_state = d_state
        self.dt_rank = dt_rank
        self.conv1d = nn.Conv1d(d_inner, d_inner, config.d_conv, groups=d_inner, bias=config.conv_bias)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True)
        # S4D-real: A = -[1, 2, ..., N] for every channel
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True
        self.reset_dt_proj(config)

    @torch.no_grad()
    def reset_dt_proj(self, config):
        """Mamba's dt_proj init: weight uniform in +-dt_rank^-0.5 * dt_scale; bias the inverse
        softplus of dt drawn log-uniformly from [dt_min, dt_max], floored at dt_init_floor."""
        std = self.dt_rank ** -0.5 * config.dt_scale
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        d_inner = self.dt_proj.out_features
        dt = torch.exp(torch.rand(d_inner) * (math.log(config.dt_max) - math.log(config.dt_min))
                       + math.log(config.dt_min)).clamp(min=config.dt_init_floor)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.dt_proj.bias._no_reinit = True

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        """Depthwise convolution of x (batch, d_inner, L): causal, or anti-causal when reverse."""
        return depthwise_conv_ref(x, self.conv1d.weight, self.conv1d.bias, reverse=self.reverse)

    def A(self) -> torch.Tensor:
        return -torch.exp(at_least_fp32(self.A_log))


def _split_x_proj(x_dbl: torch.Tensor, dt_rank: int, d_state: int):
    """(..., dt_rank + 2N, L) -> dt (..., dt_rank, L), B, C (..., N, L)."""
    return torch.split(x_dbl, [dt_rank, d_state, d_state], dim=-2)


class MambaMixer(nn.Module):
    """One-direction Mamba-1 mixer (``reverse=True``: anti-causal conv and reverse scan)."""

    def __init__(self, config, reverse: bool = False):
        super().__init__()
        self.config = config
        self.in_proj = nn.Linear(config.d_model, 2 * config.d_inner, bias=False)
        self.ssm = SSMDirection(config, reverse=reverse)
        self.out_proj = nn.Linear(config.d_inner, config.d_model, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        ssm = self.ssm
        x, z = rearrange(self.in_proj(hidden), "b l e -> b e l").chunk(2, dim=1)
        u = F.silu(ssm.conv(x))
        dt, B, C = _split_x_proj(torch.matmul(ssm.x_proj.weight, u), ssm.dt_rank, ssm.d_state)
        delta = torch.matmul(ssm.dt_proj.weight, dt)
        y = selective_scan(
            u, delta, ssm.A(), B, C, at_least_fp32(ssm.D), z,
            delta_bias=at_least_fp32(ssm.dt_proj.bias), delta_softplus=True,
            reverse=ssm.reverse, backend=self.config.scan_backend,
        )
        return self.out_proj(rearrange(y, "b e l -> b l e"))


class BiMamba(nn.Module):
    """Bidirectional Mamba with tied in_proj/out_proj, directions combined by
    ``config.bidirectional_strategy`` ("add" or "mul")."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.in_proj = nn.Linear(config.d_model, 2 * config.d_inner, bias=False)
        self.fwd = SSMDirection(config, reverse=False)
        self.rev = SSMDirection(config, reverse=True)
        self.out_proj = nn.Linear(config.d_inner, config.d_model, bias=False)
        tied = getattr(config, "bidirectional_weight_tie", True)
        self.rev_in_proj = None if tied else nn.Linear(config.d_model, 2 * config.d_inner, bias=False)
        self.rev_out_proj = None if tied else nn.Linear(config.d_inner, config.d_model, bias=False)

    def _stack(self, get):
        return torch.stack([get(self.fwd), get(self.rev)])

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        fwd = self.fwd
        A = self._stack(lambda s: s.A())
        D = at_least_fp32(self._stack(lambda s: s.D))
        delta_bias = at_least_fp32(self._stack(lambda s: s.dt_proj.bias))
        if self.rev_in_proj is not None:
            return self._untied(hidden, A, D, delta_bias)
        fused = self.config.bidirectional_strategy == "add"
        if fused and resolve_backend(self.config.scan_backend, hidden) == "triton":
            from genomamba.ops.bimamba_triton import bimamba

            conv_b = None if fwd.conv1d.bias is None else self._stack(lambda s: s.conv1d.bias)
            return bimamba(
                hidden, self.in_proj.weight, self._stack(lambda s: s.conv1d.weight[:, 0]), conv_b,
                self._stack(lambda s: s.x_proj.weight), self._stack(lambda s: s.dt_proj.weight), delta_bias,
                A, D, self.out_proj.weight,
            )
        x, z = rearrange(self.in_proj(hidden), "b l e -> b e l").chunk(2, dim=1)
        u = F.silu(torch.stack([self.fwd.conv(x), self.rev.conv(x)]))           # (2, b, d_inner, L)
        x_proj = self._stack(lambda s: s.x_proj.weight)                          # (2, r + 2N, d_inner)
        dt, B, C = _split_x_proj(torch.matmul(x_proj.unsqueeze(1), u), fwd.dt_rank, fwd.d_state)
        delta = torch.matmul(self._stack(lambda s: s.dt_proj.weight).unsqueeze(1), dt)
        if fused:
            y = selective_scan_bidirectional(
                u, delta, A, B, C, D, z, delta_bias=delta_bias, delta_softplus=True,
                combine="add", backend=self.config.scan_backend,
            )
            return self.out_proj(rearrange(y, "b e l -> b l e"))
        y = selective_scan_bidirectional(
            u, delta, A, B, C, D, z, delta_bias=delta_bias, delta_softplus=True,
            combine=None, backend=self.config.scan_backend,
        )
        out = self.out_proj(rearrange(y, "k b e l -> k b l e"))
        return out[0] * out[1]

    def _untied(self, hidden, A, D, delta_bias):
        """Both directions with their own in/out projections (``bidirectional_weight_tie: false``)."""
        fwd, rev = self.fwd, self.rev
        xz = [rearrange(proj(hidden), "b l e -> b e l").chunk(2, dim=1) for proj in (self.in_proj, self.rev_in_proj)]
        u = F.silu(torch.stack([fwd.conv(xz[0][0]), rev.conv(xz[1][0])]))
        z = torch.stack([xz[0][1], xz[1][1]])
        x_proj = self._stack(lambda s: s.x_proj.weight)
        dt, B, C = _split_x_proj(torch.matmul(x_proj.unsqueeze(1), u), fwd.dt_rank, fwd.d_state)
        delta = torch.matmul(self._stack(lambda s: s.dt_proj.weight).unsqueeze(1), dt)
        y = rearrange(selective_scan_bidirectional(
            u, delta, A, B, C, D, z, delta_bias=delta_bias, delta_softplus=True,
            combine=None, backend=self.config.scan_backend,
        ), "k b e l -> k b l e")
        out_fwd, out_rev = self.out_proj(y[0]), self.rev_out_proj(y[1])
        return out_fwd + out_rev if self.config.bidirectional_strategy == "add" else out_fwd * out_rev
