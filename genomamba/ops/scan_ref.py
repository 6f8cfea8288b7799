"""Selective-scan reference: a plain loop over time steps, for tests only.

It follows mamba-ssm's ``selective_scan_ref`` semantics and is written for
clarity, not speed: run it in float64 on small inputs and compare the fast
paths against it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def expand_groups(X: torch.Tensor, dim: int) -> torch.Tensor:
    """(batch, N, L) or (batch, groups, N, L) -> (batch, dim, N, L), channel d uses group d // (dim // groups)."""
    if X.dim() == 3:
        return X.unsqueeze(1).expand(X.shape[0], dim, X.shape[1], X.shape[2])
    b, g, n, length = X.shape
    return X.repeat_interleave(dim // g, dim=1)


def selective_scan_ref(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    reverse=False, return_last_state=False,
):
    """Plain per-step loop. Same arguments and results as ``genomamba.ops.selective_scan``.

    Computes in the dtype of ``u`` promoted with float32 (pass float64 tensors for a
    float64 reference); returns ``out`` in that dtype.
    """
    dtype = torch.promote_types(u.dtype, torch.float32)
    u_, delta_, A_ = u.to(dtype), delta.to(dtype), A.to(dtype)
    batch, dim, length = u.shape
    if delta_bias is not None:
        delta_ = delta_ + delta_bias.to(dtype)[None, :, None]
    if delta_softplus:
        delta_ = F.softplus(delta_)
    Bx = expand_groups(B.to(dtype), dim)
    Cx = expand_groups(C.to(dtype), dim)
    h = u_.new_zeros(batch, dim, A.shape[1])
    ys = [None] * length
    steps = range(length - 1, -1, -1) if reverse else range(length)
    for t in steps:
        dA = torch.exp(delta_[:, :, t, None] * A_)
        h = dA * h + (delta_[:, :, t] * u_[:, :, t])[..., None] * Bx[:, :, :, t]
        ys[t] = (h * Cx[:, :, :, t]).sum(-1)
    y = torch.stack(ys, dim=-1) if length else u_.new_zeros(batch, dim, 0)
    if D is not None:
        y = y + u_ * D.to(dtype)[None, :, None]
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return (y, h) if return_last_state else y
