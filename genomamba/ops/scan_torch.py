"""PyTorch selective scan (placeholder: the sequential reference until the chunked path lands)."""

from __future__ import annotations

import torch

from genomamba.ops.reference import selective_scan_reference


def selective_scan_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, return_last_state):
    return selective_scan_reference(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, return_last_state
    )


def selective_scan_bidirectional_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus, combine):
    outs = []
    for k in range(2):
        zk = None if z is None else (z if z.dim() == 3 else z[k])
        outs.append(
            selective_scan_torch(
                u[k], delta[k], A[k], B[k], C[k],
                None if D is None else D[k], zk,
                None if delta_bias is None else delta_bias[k],
                delta_softplus, k == 1, False,
            )
        )
    return outs[0] + outs[1] if combine == "add" else torch.stack(outs)
