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
        self.samples = {"llr": [], "emb": [], "pll": []}
        self.seen = Counter()
        self.rng = np.random.default_rng(seed)

    def add(self, allele, scores) -> None:
        self.alleles += 1
        if allele.skip:
            self.skipped[allele.skip] += 1
            return
        self.scored += 1
        for name in ("llr", "emb", "pll", "head"):
            value = getattr(scores, name)
            if value is None:
                continue
            self.per_score[name] += 1
            if name in self.samples:
                self._sample(name, value)

    @classmethod
    def merge(cls, parts: list["Summary"]) -> "Summary":
        """One summary of consecutive shares of the records (genomamba.score.parallel): counts
        added, samples joined in order (and thinned at random past RESERVOIR)."""
        out = cls()
        for part in parts:
            out.records, out.alleles, out.scored = (out.records + part.records, out.alleles + part.alleles,
                                                    out.scored + part.scored)
            out.per_score.update(part.per_score)
            out.skipped.update(part.skipped)
            out.seen.update(part.seen)
            for name, values in part.samples.items():
                out.samples.setdefault(name, []).extend(values)
        for name, values in out.samples.items():
            if len(values) > RESERVOIR:
                keep = np.sort(out.rng.choice(len(values), RESERVOIR, replace=False))
                out.samples[name] = [values[i] for i in keep]
        return out

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

    def as_dict(self, settings, seconds, work, provenance: dict | None = None) -> dict:
        """The summary.json object; ``provenance``: the output's ``##genomamba_*`` header fields."""
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
            "alleles_per_second": _rate(self.alleles, seconds),
            "records_per_second": _rate(self.records, seconds),
            "alleles_scored_per_second": _rate(self.scored, seconds),
            "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()},
            "provenance": provenance or {},
        }

    def line(self, seconds: float | None = None) -> str:
        scored = ", ".join(f"{k} {v}" for k, v in sorted(self.per_score.items())) or "none"
        skipped = ", ".join(f"{k} {v}" for k, v in self.skipped.most_common()) or "none"
        records = f"{self.records} record{'' if self.records == 1 else 's'}"
        alleles = f"{self.alleles} ALT allele{'' if self.alleles == 1 else 's'}"
        return (f"score: {records}, {alleles}: {self.scored} scored ({scored}); "
                f"{sum(self.skipped.values())} skipped ({skipped})" + (
                    f"; {seconds:.1f} s, {self.records / seconds:,.1f} records/s, "
                    f"{self.scored / seconds:,.1f} scored ALTs/s" if seconds else ""))


def _rate(n: int, seconds: float) -> float | None:
    return round(n / seconds, 3) if seconds > 0 else None


def profile_table(stages: dict[str, float], total: float) -> tuple[dict, str]:
    """summary.json's "profile" ({stage: {"seconds", "percent"}}, with "other" for the untimed
    rest of ``total``) and the table printed for ``--profile``."""
    stages = {**stages, "other": max(0.0, total - sum(stages.values()))}
    out = {k: {"seconds": round(v, 4), "percent": round(100 * v / total, 2) if total > 0 else None}
           for k, v in stages.items()}
    lines = [f"score: profile ({total:.2f} s in all)", f"  {'stage':<12} {'seconds':>10} {'%':>6}"]
    lines += [f"  {k:<12} {v:>10.3f} {100 * v / total if total > 0 else 0:>6.1f}" for k, v in stages.items()]
    return out, "\n".join(lines)


def plot_distribution(path, samples) -> None:
    plt = pyplot()
    labels = {"llr": "GM_LLR: log p(ALT) - log p(REF)", "emb": "GM_EMB: embedding cosine distance",
              "pll": "GM_PLL: PLL(ALT) - PLL(REF)"}
    present = [k for k in ("llr", "emb", "pll") if samples.get(k)]
    fig, axes = plt.subplots(1, max(1, len(present)), figsize=(5 * max(1, len(present)), 3.2), squeeze=False)
    for ax, name in zip(axes[0], present):
        ax.hist(samples[name], bins=50, color={"llr": "tab:blue", "emb": "tab:orange"}.get(name, "tab:green"))
        ax.set_xlabel(labels[name])
        ax.set_ylabel("alleles")
        ax.set_title(f"n = {len(samples[name])}")
    if not present:
        axes[0][0].text(0.5, 0.5, "no alleles scored", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    save_figure(fig, path)
