"""``run_evaluate``: labelled, scored variants -> metrics of the score and the k-mer baseline."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from genomamba import settings
from genomamba.errors import GenomambaError, where
from genomamba.evaluate import metrics as M
from genomamba.evaluate.labels import describe, join, read_labels, read_scored

DEFAULTS = settings.packaged("evaluate")
STRATIFY = (None, "substitution")


@dataclass
class EvaluateSettings:
    scored: str
    out: str
    labels: str | None = None
    reference: str | None = None
    score: str = DEFAULTS["score"]
    positive: object = DEFAULTS["positive"]
    negative: object = DEFAULTS["negative"]
    higher_is_positive: bool = DEFAULTS["higher_is_positive"]
    label_field: str | None = DEFAULTS["label_field"]
    allow_missing: bool = DEFAULTS["allow_missing"]
    stratify: str | None = DEFAULTS["stratify"]
    bootstrap: int = DEFAULTS["bootstrap"]
    seed: int = DEFAULTS["seed"]
    kmer_flank: int = DEFAULTS["kmer_flank"]

    def check(self):
        for name in ("positive", "negative"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",")]
            if not value or not all(isinstance(v, str) and v for v in value):
                raise GenomambaError(f"set {name} (--{name} LABEL[,LABEL...]): the labels of the {name} class")
            setattr(self, name, list(value))
        both = set(self.positive) & set(self.negative)
        if both:
            raise GenomambaError(f"label(s) {', '.join(sorted(both))} are in both the positive and negative class")
        if (self.labels is None) == (self.label_field is None):
            raise GenomambaError("give exactly one of --labels LABELS.tsv and --label-field INFO_KEY")
        if self.stratify not in STRATIFY:
            raise GenomambaError(f"stratify takes substitution (or nothing), got {self.stratify!r}")
        settings.check_number("bootstrap", self.bootstrap, integer=True, minimum=0)
        settings.check_number("seed", self.seed, integer=True, minimum=0)


def summary(scores, is_positive, keys, s: EvaluateSettings) -> dict:
    """AUROC, AUPRC, their CIs and (with stratify) the per-type AUROCs of oriented scores."""
    ci = M.bootstrap_ci(scores, is_positive, s.bootstrap, s.seed)
    out = {"n_positive": int(is_positive.sum()), "n_negative": int((~is_positive).sum()),
           "auroc": M.auroc(scores, is_positive), "auprc": M.auprc(scores, is_positive),
           "auroc_ci": ci["auroc"], "auprc_ci": ci["auprc"]}
    if s.stratify == "substitution":
        out["stratified"] = M.stratified_auroc(scores, is_positive, [M.substitution_type(k[2], k[3]) for k in keys])
    return out


def kmer_baseline(s: EvaluateSettings, keys, is_positive) -> tuple[dict, np.ndarray, np.ndarray]:
    from genomamba.data.reference import open_reference
    from genomamba.evaluate.kmer import KmerCentreModel

    reference = open_reference(s.reference)
    model = KmerCentreModel(s.kmer_flank).fit(reference)
    llr = [model.llr(reference, *key) for key in keys]
    have = np.array([v is not None for v in llr], dtype=bool)
    scores = -np.array([v for v in llr if v is not None], dtype=np.float64)  # an LLR: low = positive
    result = {"reference": s.reference, "flank": s.kmer_flank, "n_missing": int((~have).sum()),
              **summary(scores, is_positive[have], [k for k, h in zip(keys, have) if h], s)}
    return result, scores, is_positive[have]


def run_evaluate(s: EvaluateSettings) -> dict:
    from genomamba.evaluate.report import write_outputs

    s.check()
    labels = read_labels(s.labels) if s.labels else None
    scored = read_scored(s.scored, s.score, s.label_field)
    joined = join(scored, labels, s.labels, s.positive, s.negative)
    if joined.n_missing and not s.allow_missing:
        key, at = joined.missing_examples[0]
        place = where(s.labels, line=at) if labels is not None else f"{s.scored}, {at}"
        raise GenomambaError(f"{place}: labelled variant {describe(key)} has no {s.score} in {s.scored} "
                             f"({joined.n_missing} labelled variant(s) have none; --allow-missing counts them)")
    if joined.is_positive.all() or not joined.is_positive.any():
        raise GenomambaError(f"{s.scored}: after leaving out {joined.n_missing} variant(s) without {s.score}, "
                             "one class has no scored variant")
    oriented = joined.scores if s.higher_is_positive else -joined.scores
    m = {
        "scored": s.scored, "labels": s.labels or f"INFO/{s.label_field}", "score_field": s.score,
        "orientation": "higher score = positive" if s.higher_is_positive else "lower score = positive",
        "positive": s.positive, "negative": s.negative,
        **summary(oriented, joined.is_positive, joined.keys, s),
        "n_missing": joined.n_missing, "n_unlabelled": joined.n_unlabelled, "other_labels": joined.other_labels,
        "auprc_random": float(joined.is_positive.mean()),
        "bootstrap": {"replicates": s.bootstrap, "seed": s.seed, "level": 0.95,
                      "method": "percentile, positives and negatives resampled separately"},
        "kmer_baseline": None,
    }
    curves = {s.score: (oriented, joined.is_positive)}
    if s.reference:
        m["kmer_baseline"], scores, is_positive = kmer_baseline(s, joined.keys, joined.is_positive)
        curves[f"k-mer baseline ({2 * s.kmer_flank}-base context)"] = (scores, is_positive)
    write_outputs(s.out, m, curves)
    k = m["kmer_baseline"]
    print(f"evaluate: {s.score} AUROC {_short(m['auroc'])}, AUPRC {_short(m['auprc'])} on "
          f"{m['n_positive']} positive and {m['n_negative']} negative variants"
          + (f"; k-mer baseline AUROC {_short(k['auroc'])}" if k else "") + f"; wrote {s.out}", file=sys.stderr)
    return m


def _short(value):
    return "n/a" if value is None else f"{value:.3f}"
