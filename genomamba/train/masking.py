"""Masked-language-model corruption (BERT style) and the masked loss.

Targets are drawn among A/C/G/T positions only (never N or [PAD]): each with
probability ``mask_prob``; a target becomes [MASK] with probability ``mask_token``,
a uniformly random base with probability ``random_token``, and stays as it is
otherwise. The loss and accuracy are taken on targets only; soft-masked (repeat)
targets can be down-weighted.
"""

from __future__ import annotations

import numpy as np

from genomamba.data import MASK

IGNORE = -100  # label of positions that are not targets


def mask_tokens(tokens: np.ndarray, softmask: np.ndarray | None, rng: np.random.Generator,
                mask_prob: float = 0.15, mask_token: float = 0.8, random_token: float = 0.1,
                softmask_weight: float = 1.0):
    """Corrupt a (batch, L) uint8 token array.

    Returns ``(input_ids int64, labels int64 with IGNORE off-target, weights float32)``.
    """
    tokens = np.asarray(tokens)
    is_base = tokens < 4
    targets = is_base & (rng.random(tokens.shape) < mask_prob)
    labels = np.where(targets, tokens.astype(np.int64), IGNORE)
    action = rng.random(tokens.shape)
    inputs = tokens.astype(np.int64)
    to_mask = targets & (action < mask_token)
    to_random = targets & (action >= mask_token) & (action < mask_token + random_token)
    inputs[to_mask] = MASK
    inputs[to_random] = rng.integers(0, 4, size=int(to_random.sum()))
    weights = targets.astype(np.float32)
    if softmask is not None and softmask_weight != 1.0:
        weights[targets & np.asarray(softmask, dtype=bool)] = softmask_weight
    return inputs, labels, weights


N_STATS = 8  # length of the stats vector of masked_loss


def masked_loss(logits, labels, weights, input_ids=None):
    """Weighted mean cross-entropy over targets, plus sums for metrics.

    Returns ``(loss, stats)``: ``loss`` is sum(w * ce) / sum(w) (0 when there are no
    targets); ``stats`` is a float64 tensor [sum w*ce, sum w, sum ce, n targets,
    n correct, sum ce, n, n correct over targets shown as [MASK]] (the last three need
    ``input_ids``), for exact aggregation over micro-batches and processes.
    """
    import torch
    import torch.nn.functional as F

    logits = logits.float().reshape(-1, logits.shape[-1])
    labels = labels.reshape(-1)
    weights = weights.reshape(-1).to(logits.dtype)
    ce = F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="none")
    on = labels != IGNORE
    wsum = weights.sum()
    loss = (ce * weights).sum() / wsum.clamp_min(1e-8)
    with torch.no_grad():
        hit = (logits.argmax(-1) == labels) & on
        shown = on & (input_ids.reshape(-1) == MASK) if input_ids is not None else torch.zeros_like(on)
        stats = torch.stack([
            (ce * weights).sum(), wsum, ce[on].sum(), on.sum(), hit.sum(),
            ce[shown].sum(), shown.sum(), (hit & shown).sum(),
        ]).double()
    return loss, stats


def summarize(stats) -> dict:
    """Summed stats -> loss (weighted), ce, perplexity and accuracy over all targets, and
    mask_ce / mask_acc over the targets replaced by [MASK] (predicted from context alone)."""
    import math

    wce, w, ce, n, correct, mce, mn, mcorrect = (float(x) for x in stats)
    nan = float("nan")
    mean_ce = ce / n if n else nan
    return {
        "loss": wce / w if w else nan,
        "ce": mean_ce,
        "ppl": math.exp(min(mean_ce, 700.0)) if n else nan,
        "acc": correct / n if n else nan,
        "mask_ce": mce / mn if mn else nan,
        "mask_acc": mcorrect / mn if mn else nan,
        "targets": int(n),
    }
