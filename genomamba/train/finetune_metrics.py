"""Classification metrics in numpy: accuracy, MCC, macro-F1, AUROC.

``labels``: (n,) int class ids; ``probs``: (n, K) class probabilities. Binary and
multi-class alike: MCC is Gorodkin's R_K (equal to the usual MCC for two classes); AUROC is
the rank statistic (ties count half) for two classes and the macro average of one-vs-rest
AUROCs over classes present in ``labels`` for more. Undefined values are ``None``.
"""

from __future__ import annotations

import math

import numpy as np


def confusion(labels, preds, k: int) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), np.asarray(preds)), 1)
    return m


def mcc(labels, preds, k: int) -> float:
    c = confusion(labels, preds, k).astype(np.float64)
    n = c.sum()
    correct = np.trace(c)
    true_per_class, pred_per_class = c.sum(axis=1), c.sum(axis=0)
    cov_tp = correct * n - true_per_class @ pred_per_class
    cov_pp = n * n - pred_per_class @ pred_per_class
    cov_tt = n * n - true_per_class @ true_per_class
    if cov_pp == 0 or cov_tt == 0:
        return 0.0
    return float(cov_tp / math.sqrt(cov_pp * cov_tt))


def macro_f1(labels, preds, k: int) -> float:
    c = confusion(labels, preds, k).astype(np.float64)
    tp = np.diag(c)
    denom = c.sum(axis=0) + c.sum(axis=1)  # 2tp + fp + fn
    present = c.sum(axis=1) + c.sum(axis=0) > 0
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def binary_auroc(is_positive, scores) -> float | None:
    is_positive = np.asarray(is_positive, dtype=bool)
    n_pos, n_neg = int(is_positive.sum()), int((~is_positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    u = ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def auroc(labels, probs) -> float | None:
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[1] == 2:
        return binary_auroc(labels == 1, probs[:, 1])
    values = [binary_auroc(labels == j, probs[:, j]) for j in range(probs.shape[1])]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def classification_metrics(labels, probs) -> dict:
    labels = np.asarray(labels)
    probs = np.asarray(probs)
    k = probs.shape[1]
    preds = probs.argmax(axis=1)
    return {
        "n": int(labels.size),
        "accuracy": float((preds == labels).mean()) if labels.size else None,
        "mcc": mcc(labels, preds, k),
        "macro_f1": macro_f1(labels, preds, k),
        "auroc": auroc(labels, probs),
        "majority_baseline_accuracy": float(np.bincount(labels, minlength=k).max() / labels.size)
        if labels.size
        else None,
    }


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(x.size, dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_x)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [x.size]])
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    return ranks
