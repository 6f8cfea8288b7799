"""Which bases a track covers, cut into parts: the BED regions (checked against the
reference before any work: an unknown contig, an end past the contig's, a bad line are
one-line errors naming the file and line) or every contig whole; sorted in reference
order, overlapping or touching regions merged (a bigWig holds one value per base), then
cut into parts of at most ``part_size`` bases, the unit a rerun resumes from."""

from __future__ import annotations

from dataclasses import dataclass

from genomamba.data.regions import bed_regions
from genomamba.errors import GenomambaError


@dataclass(frozen=True)
class Part:
    contig: str
    start: int  # 0-based
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


def plan_parts(reference, bed: str | None, part_size: int) -> list[Part]:
    if bed is None:
        spans = [(c, 0, reference.length(c)) for c in reference.contigs if reference.length(c) > 0]
        if not spans:
            raise GenomambaError(f"{reference.path}: the reference has no bases")
    else:
        spans = [_span(r.name) for r in bed_regions(bed, reference, fetch=False)]
        if not spans:
            raise GenomambaError(f"{bed}: no regions (an empty BED, or only comment/track lines)")
    order = {c: i for i, c in enumerate(reference.contigs)}
    merged: list[list] = []
    for contig, start, end in sorted(spans, key=lambda s: (order[s[0]], s[1], s[2])):
        if merged and merged[-1][0] == contig and start <= merged[-1][2]:
            merged[-1][2] = max(merged[-1][2], end)
        else:
            merged.append([contig, start, end])
    return [Part(c, s, min(e, s + part_size)) for c, lo, e in merged for s in range(lo, e, part_size)]


def _span(name: str) -> tuple[str, int, int]:
    """``chrom:start-end`` (1-based, inclusive; ``(-)`` for a minus-strand line) as 0-based."""
    contig, _, interval = name.removesuffix("(-)").rpartition(":")
    start, end = interval.split("-")
    return contig, int(start) - 1, int(end)
