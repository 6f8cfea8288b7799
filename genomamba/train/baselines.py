"""Simple baselines for a fine-tuning task, fitted on the same splits as the model.

A DNA language model is worth its cost only where it beats simple models; ``finetune``
with ``baselines=[kmer, onehot]`` reports these beside it, in the same metrics:

- ``kmer``: multinomial logistic regression on canonical k-mer frequencies (a k-mer and
  its reverse complement count as one, so the features are strand-symmetric like the
  model; windows with N are not counted), k chosen among ``KMER_SIZES``;
- ``onehot``: multinomial logistic regression on the one-hot sequence (4 features per
  position, N all zero), for fixed-length tasks only (every sequence of every split as
  long as the others) and up to ``MAX_ONEHOT_VALUES`` training values.

Both standardise the features on train and are fitted with L-BFGS (torch, float64) on the
mean cross-entropy plus an L2 penalty; the penalty (and k) is the one whose validation
``metric`` is best (ties: the stronger penalty, the smaller k). Deterministic: the fit
starts from zero weights.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genomamba.train.finetune_metrics import classification_metrics

BASELINES = ("kmer", "onehot")
KMER_SIZES = (2, 4, 6)
L2_GRID = (10.0, 1.0, 0.1, 0.01, 0.001)  # strongest first
MAX_ONEHOT_VALUES = 50_000_000  # training examples x length x 4


def canonical_index(k: int) -> np.ndarray:
    """Column of each k-mer code (base 4, A=0 .. T=3, first base most significant) in the
    canonical table: a k-mer and its reverse complement share one column."""
    codes = np.arange(4**k)
    digits = (codes[:, None] // 4 ** np.arange(k - 1, -1, -1)) % 4
    rc = ((3 - digits[:, ::-1]) * 4 ** np.arange(k - 1, -1, -1)).sum(axis=1)
    canon = np.minimum(codes, rc)
    _, column = np.unique(canon, return_inverse=True)
    return column


def kmer_features(sequences, k: int) -> np.ndarray:
    """(n, canonical k-mers) frequencies: counts over windows of A/C/G/T only, divided by
    the number of such windows (rows of zeros for a sequence without one)."""
    column = canonical_index(k)
    out = np.zeros((len(sequences), column.max() + 1))
    powers = 4 ** np.arange(k - 1, -1, -1)
    for i, seq in enumerate(sequences):
        seq = np.asarray(seq, dtype=np.int64)
        if seq.size < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(seq, k)
        valid = (windows < 4).all(axis=1)
        if valid.any():
            counts = np.bincount(column[windows[valid] @ powers], minlength=out.shape[1])
            out[i] = counts / valid.sum()
    return out


def onehot_features(sequences) -> np.ndarray:
    tokens = np.stack([np.asarray(s, dtype=np.int64) for s in sequences])
    out = np.zeros((*tokens.shape, 4))
    rows, cols = np.nonzero(tokens < 4)
    out[rows, cols, tokens[rows, cols]] = 1.0
    return out.reshape(len(sequences), -1)


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float):
    """Weights, bias of multinomial logistic regression (standardised ``x``)."""
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)
    w = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300, tolerance_grad=1e-6, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xt @ w + b, yt) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _probs(x, w, b) -> np.ndarray:
    return torch.softmax(torch.as_tensor(x, dtype=torch.float64) @ w + b, -1).numpy()


def _better(new, best, metric) -> bool:
    value = new[metric] if new[metric] is not None else -np.inf
    return best is None or value > (best[metric] if best[metric] is not None else -np.inf)


def fit_and_report(features: dict, labels: dict, n_classes: int, metric: str, extra: dict) -> dict:
    """Choose the L2 penalty on val; metrics of the chosen fit on every split."""
    mean, sd = features["train"].mean(0), features["train"].std(0)
    sd[sd == 0] = 1.0
    x = {k: (v - mean) / sd for k, v in features.items()}
    best, chosen = None, None
    for l2 in L2_GRID:
        w, b = fit_logistic(x["train"], labels["train"], n_classes, l2)
        val = classification_metrics(labels["val"], _probs(x["val"], w, b))
        if _better(val, best, metric):
            best, chosen = val, (l2, w, b)
    l2, w, b = chosen
    return {**extra, "l2": l2, "n_features": int(x["train"].shape[1]),
            **{k: classification_metrics(labels[k], _probs(x[k], w, b)) for k in x}}


def fit_baselines(names, sequences: dict, labels: dict, n_classes: int, metric: str) -> dict:
    """``{name: metrics per split (and the choices made), or {"skipped": why}}``;
    ``sequences`` and ``labels``: per split (train, val[, test])."""
    out = {}
    for name in names:
        if name == "kmer":
            best = None
            for k in KMER_SIZES:
                feats = {split: kmer_features(seqs, k) for split, seqs in sequences.items()}
                result = fit_and_report(feats, labels, n_classes, metric,
                                        {"features": f"canonical {k}-mer frequencies", "k": k})
                if best is None or _better(result["val"], best["val"], metric):
                    best = result
            out[name] = best
        elif name == "onehot":
            lengths = {len(s) for seqs in sequences.values() for s in seqs}
            n_values = len(sequences["train"]) * max(lengths) * 4
            if len(lengths) != 1:
                out[name] = {"skipped": f"sequences of {len(lengths)} different lengths (one-hot needs one length)"}
            elif n_values > MAX_ONEHOT_VALUES:
                out[name] = {"skipped": f"{n_values} one-hot training values, over {MAX_ONEHOT_VALUES}"}
            else:
                feats = {split: onehot_features(seqs) for split, seqs in sequences.items()}
                out[name] = fit_and_report(feats, labels, n_classes, metric,
                                           {"features": f"one-hot of {lengths.pop()} positions"})
    return out
