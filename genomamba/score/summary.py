"""The run's statistics: counts of scored and skipped alleles, a reservoir sample of
each score, the summary written to ``<out stem>.summary.json`` and printed, and the plot
of the score distributions."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

import numpy as np

from genomamba.files import pyplot, save_figure
from genomamba.score.variants import SKIP_REASONS

RESERVOIR = 100_000  # sampled values per score, at most


class Summary:
    def __init__(self, seed: int = 0):
        self.records = self.alleles = self.scored = 0
        self.per_score = Counter()
        self.skipped = Counter()
        self.samples = {"llr": [], "emb": []}
        self.seen = Counter()
        self.rng = np.random.default_rng(seed)

    def add(self, allele, scores) -> None:
        self.alleles += 1
        if allele.skip:
            self.skipped[allele.skip] += 1
            return
        self.scored += 1
        for name in ("llr", "emb", "head"):
            value = getattr(scores, name)
            if value is None:
                continue
            self.per_score[name] += 1
            if name in self.samples:
                self._sample(name, value)

    def _sample(self, name, value) -> None:
        """Reservoir sample of at most RESERVOIR values per score (for the plot)."""
        self.seen[name] += 1
        bucket = self.samples[name]
        if len(bucket) < RESERVOIR:
            bucket.append(value)
        else:
            j = self.rng.integers(self.seen[name])
            if j < RESERVOIR:
                bucket[j] = value

    def as_dict(self, settings, seconds, work) -> dict:
        stats = {}
        for name, values in self.samples.items():
            if values:
                v = np.asarray(values)
                stats[name] = {"sampled": v.size, "mean": v.mean(), "sd": v.std(), "min": v.min(),
                               "median": float(np.median(v)), "max": v.max()}
        return {
            "records": self.records,
            "alleles": self.alleles,
            "alleles_scored": self.scored,
            "scored_by_score": dict(self.per_score),
            "skipped_by_reason": {r: self.skipped[r] for r in SKIP_REASONS if self.skipped[r]},
            "score_stats": stats,
            "forward_rows": asdict(work),
            "seconds": round(seconds, 3),
            "alleles_per_second": round(self.alleles / seconds, 3) if seconds > 0 else None,
            "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()},
        }

    def line(self) -> str:
        scored = ", ".join(f"{k} {v}" for k, v in sorted(self.per_score.items())) or "none"
        skipped = ", ".join(f"{k} {v}" for k, v in self.skipped.most_common()) or "none"
        return (f"score: {self.records} records, {self.alleles} ALT alleles: {self.scored} scored ({scored}); "
                f"{sum(self.skipped.values())} skipped ({skipped})")


def plot_distribution(path, samples) -> None:
    plt = pyplot()
    labels = {"llr": "GM_LLR: log p(ALT) - log p(REF)", "emb": "GM_EMB: embedding cosine distance"}
    present = [k for k in ("llr", "emb") if samples.get(k)]
    fig, axes = plt.subplots(1, max(1, len(present)), figsize=(5 * max(1, len(present)), 3.2), squeeze=False)
    for ax, name in zip(axes[0], present):
        ax.hist(samples[name], bins=50, color="tab:blue" if name == "llr" else "tab:orange")
        ax.set_xlabel(labels[name])
        ax.set_ylabel("alleles")
        ax.set_title(f"n = {len(samples[name])}")
    if not present:
        axes[0][0].text(0.5, 0.5, "no alleles scored", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    save_figure(fig, path)
