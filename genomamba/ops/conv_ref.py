"""BiMamba's depthwise convolution as plain PyTorch: the CPU path (``SSMDirection.conv``
in ``genomamba.model.mixer``) and the reference ``conv_triton`` is tested against."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def depthwise_conv_ref(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       reverse: bool = False) -> torch.Tensor:
    """Depthwise convolution of x (batch, E, L) with weight (E, 1, K): causal, or
    anti-causal with the kernel reversed when ``reverse`` (flip -> causal conv -> flip)."""
    k = weight.shape[-1]
    if reverse:
        x, weight = F.pad(x, (0, k - 1)), weight.flip(-1)
    else:
        x = F.pad(x, (k - 1, 0))
    return F.conv1d(x, weight, bias, groups=weight.shape[0])


def conv_silu_ref(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv_triton.conv_silu_forward``'s result: u (2, n, E, L) = silu of the causal (0)
    and anti-causal (1) convolutions of x (n, E, L) with weight (2, E, K), bias (2, E)."""
    return torch.stack([
        F.silu(depthwise_conv_ref(x, weight[r].unsqueeze(1), None if bias is None else bias[r], reverse=r == 1))
        for r in range(2)
    ])
