"""Selective scan (Mamba-1), with a Triton GPU kernel and a chunked PyTorch path.

``selective_scan`` has the semantics and shapes of mamba-ssm's ``selective_scan_fn``:

- u, delta, z: (batch, dim, L); A: (dim, N) real; B, C: (batch, N, L) or
  (batch, groups, N, L); D, delta_bias: (dim,).
- delta' = softplus(delta + delta_bias) (softplus optional), dA = exp(delta' A),
  h_t = dA_t h_{t-1} + delta'_t B_t u_t, y_t = C_t . h_t + D u_t, out = y * silu(z).
- ``reverse=True`` runs the recurrence from t = L-1 down to 0 (no flipped copies).
- State and accumulation are fp32 whatever the input dtype; ``out`` has u's dtype.

``selective_scan_bidirectional`` runs a forward scan with one parameter set and a
reverse scan with another in one call (BiMamba), on direction-stacked inputs.
"""

from __future__ import annotations

from genomamba.ops.backend import resolve_backend


def selective_scan(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    reverse=False, return_last_state=False, backend="auto",
):
    """Selective scan; returns ``out`` (batch, dim, L), or ``(out, last_state)`` with
    ``return_last_state`` (last_state: (batch, dim, N) fp32, the state after the final
    step of the scan: t = L-1 forward, t = 0 reverse)."""
    backend = resolve_backend(backend, u)
    if backend == "triton":
        from genomamba.ops.scan_triton import selective_scan_triton

        return selective_scan_triton(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, return_last_state
        )
    from genomamba.ops.scan_torch import selective_scan_torch

    return selective_scan_torch(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, return_last_state
    )


def selective_scan_bidirectional(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    combine="add", backend="auto",
):
    """Forward scan of direction 0 and reverse scan of direction 1, in one call.

    Shapes carry a leading direction axis of size 2: u, delta (2, batch, dim, L);
    A (2, dim, N); B, C (2, batch, N, L) or (2, batch, groups, N, L);
    D, delta_bias (2, dim). ``z`` (batch, dim, L) is shared by both directions (as
    with BiMamba's tied in_proj) or (2, batch, dim, L).

    combine="add" returns out_fwd + out_rev (batch, dim, L); combine=None returns
    both stacked (2, batch, dim, L).
    """
    backend = resolve_backend(backend, u)
    if combine not in ("add", None):
        raise ValueError(f"combine must be 'add' or None, got {combine!r}")
    if backend == "triton":
        from genomamba.ops.scan_triton import selective_scan_bidirectional_triton

        return selective_scan_bidirectional_triton(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, combine
        )
    from genomamba.ops.scan_torch import selective_scan_bidirectional_torch

    return selective_scan_bidirectional_torch(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, combine
    )

