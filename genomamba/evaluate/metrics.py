"""Ranking metrics for a binary comparison, in numpy, exact with tied scores.

Every function takes ``scores`` oriented so that a *higher* value means "more likely
positive" (the caller flips an LLR, where damaging variants score low) and ``is_positive``,
a boolean array of the same length.

- ``auroc``: the probability that a random positive outranks a random negative, ties
  counting one half: the Mann-Whitney U statistic divided by ``n_pos * n_neg``;
- ``auprc``: average precision, ``sum_k (R_k - R_{k-1}) P_k`` over the distinct score
  thresholds (tied scores enter together, so the value does not depend on their order);
- ``roc_points`` / ``pr_points``: the curves at those thresholds;
- ``bootstrap_ci``: percentile 95% intervals from a stratified bootstrap (positives and
  negatives resampled separately, so every replicate has both classes), deterministic
  for a seed;
- ``substitution_type`` / ``stratified_auroc``: AUROC within each strand-collapsed SNV
  type (C>A C>G C>T T>A T>C T>G) and their mean weighted by pairs (``n_pos * n_neg``).
"""

from __future__ import annotations

import numpy as np

SUBSTITUTIONS = ("C>A", "C>G", "C>T", "T>A", "T>C", "T>G")
_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}


def _checked(scores, is_positive):
    scores = np.asarray(scores, dtype=np.float64)
    is_positive = np.asarray(is_positive, dtype=bool)
    if scores.shape != is_positive.shape or scores.ndim != 1:
        raise ValueError("scores and is_positive must be 1-d arrays of one length")
    return scores, is_positive


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``; tied values share their average rank."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]]))
    ends = np.concatenate([starts[1:], [x.size]])
    group_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def auroc(scores, is_positive) -> float | None:
    """Mann-Whitney U / (n_pos n_neg); None without both classes."""
    scores, is_positive = _checked(scores, is_positive)
    n_pos = int(is_positive.sum())
    n_neg = is_positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    u = average_ranks(scores)[is_positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _threshold_counts(scores, is_positive):
    """Cumulative (true positives, false positives) at each distinct threshold, highest first."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], is_positive[order]
    last_of_group = np.concatenate([s[1:] != s[:-1], [True]])
    tp = np.cumsum(y)[last_of_group]
    fp = np.cumsum(~y)[last_of_group]
    return tp.astype(np.float64), fp.astype(np.float64)


def auprc(scores, is_positive) -> float | None:
    """Average precision; None without positives (or without any variant)."""
    scores, is_positive = _checked(scores, is_positive)
    n_pos = int(is_positive.sum())
    if n_pos == 0:
        return None
    tp, fp = _threshold_counts(scores, is_positive)
    precision = tp / (tp + fp)
    recall_step = np.diff(np.concatenate([[0.0], tp])) / n_pos
    return float(np.sum(recall_step * precision))


def roc_points(scores, is_positive):
    """(false positive rates, true positive rates), from (0, 0) to (1, 1)."""
    scores, is_positive = _checked(scores, is_positive)
    tp, fp = _threshold_counts(scores, is_positive)
    n_pos, n_neg = max(int(is_positive.sum()), 1), max(int((~is_positive).sum()), 1)
    return np.concatenate([[0.0], fp / n_neg]), np.concatenate([[0.0], tp / n_pos])


def pr_points(scores, is_positive):
    """(recalls, precisions) at each distinct threshold, highest threshold first."""
    scores, is_positive = _checked(scores, is_positive)
    tp, fp = _threshold_counts(scores, is_positive)
    return tp / max(int(is_positive.sum()), 1), tp / (tp + fp)


def bootstrap_ci(scores, is_positive, n: int, seed: int, level: float = 0.95) -> dict:
    """``{"auroc": [lo, hi], "auprc": [lo, hi]}`` (None where undefined or ``n`` is 0)."""
    scores, is_positive = _checked(scores, is_positive)
    pos, neg = scores[is_positive], scores[~is_positive]
    if n <= 0 or pos.size == 0 or neg.size == 0:
        return {"auroc": None, "auprc": None}
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.ones(pos.size, bool), np.zeros(neg.size, bool)])
    values = np.empty((n, 2))
    for i in range(n):
        sample = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        values[i] = auroc(sample, labels), auprc(sample, labels)
    tail = (1 - level) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail], axis=0)
    return {"auroc": [float(lo[0]), float(hi[0])], "auprc": [float(lo[1]), float(hi[1])]}


def substitution_type(ref: str, alt: str) -> str | None:
    """'G>T' -> 'C>A' (the pyrimidine strand); None for anything but an A/C/G/T SNV."""
    ref, alt = ref.upper(), alt.upper()
    if len(ref) != 1 or len(alt) != 1 or ref not in _COMPLEMENT or alt not in _COMPLEMENT or ref == alt:
        return None
    if ref in "GA":
        ref, alt = _COMPLEMENT[ref], _COMPLEMENT[alt]
    return f"{ref}>{alt}"


def stratified_auroc(scores, is_positive, strata) -> dict:
    """AUROC, n_positive and n_negative within each substitution type, and their
    pair-weighted mean over the types where the AUROC is defined."""
    scores, is_positive = _checked(scores, is_positive)
    strata = np.asarray(strata, dtype=object)
    out, total, weight = {}, 0.0, 0
    for name in SUBSTITUTIONS:
        keep = strata == name
        value = auroc(scores[keep], is_positive[keep])
        n_pos = int(is_positive[keep].sum())
        n_neg = int(keep.sum()) - n_pos
        out[name] = {"auroc": value, "n_positive": n_pos, "n_negative": n_neg}
        if value is not None:
            total += value * n_pos * n_neg
            weight += n_pos * n_neg
    other = int(np.sum(strata == None))  # noqa: E711 (elementwise)
    return {"types": out, "pair_weighted_auroc": total / weight if weight else None, "n_not_snv": other}
