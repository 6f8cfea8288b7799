"""Pooling of a classifier: per-position features (n, L, d) -> one vector per sequence.

- ``mean`` / ``max``: over the non-[PAD] positions (all positions for a row that is only
  padding); ``center``: position L // 2 (for site tasks: the window is centred on the site);
- ``mean_center``: the mean and the centre side by side (2d features): where the signal
  sits, and what surrounds it;
- ``attention``: a weighted mean over the non-[PAD] positions, with weights
  softmax(h_i . q / sqrt(d)) from a learned query ``q`` (``pooler.query``; zero at first,
  so it starts as the mean). It has weights to learn, so it needs full fine-tuning.

Only ``attention`` has parameters, so the other poolings save the same weights as before.
"""

from __future__ import annotations

import torch
from torch import nn

from genomamba.data.vocab import PAD

POOLINGS = ("mean", "max", "center", "mean_center", "attention")
LEARNED = ("attention",)  # poolings with weights (not for a probe on frozen features)


def feature_size(pooling: str, d_model: int) -> int:
    return 2 * d_model if pooling == "mean_center" else d_model


class Pooling(nn.Module):
    def __init__(self, pooling: str, d_model: int):
        super().__init__()
        self.kind = pooling
        if pooling == "attention":
            self.query = nn.Parameter(torch.zeros(d_model))

    def forward(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """(n, L, d) features of the sequences ``input_ids`` (n, L) -> (n, feature_size)."""
        if self.kind == "center":
            return hidden[:, hidden.shape[1] // 2]
        keep = input_ids != PAD
        keep = (keep | ~keep.any(dim=1, keepdim=True)).unsqueeze(-1)
        if self.kind == "max":
            return hidden.masked_fill(~keep, float("-inf")).amax(1)
        if self.kind == "attention":
            scores = (hidden.float() @ self.query.float()) / hidden.shape[-1] ** 0.5
            weights = torch.softmax(scores.masked_fill(~keep[..., 0], float("-inf")), dim=1)
            return (weights.unsqueeze(-1) * hidden.float()).sum(1).to(hidden.dtype)
        mean = (hidden * keep).sum(1) / keep.sum(1)
        if self.kind == "mean_center":
            return torch.cat([mean, hidden[:, hidden.shape[1] // 2]], dim=-1)
        return mean
