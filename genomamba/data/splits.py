"""Train/val/test splits of a genome, by contig names, a BED of held-out intervals, or
a fraction of each contig.

Rules (checked, with errors that name the option, file and line):

1. Contigs named in ``val_contigs`` / ``test_contigs`` belong wholly to that split.
2. Every other contig is divided either by ``holdout_bed`` (intervals whose BED name
   column is ``val`` or ``test``; the rest of the contig is train) or by
   ``val_fraction`` / ``test_fraction`` (each contig ends with its val then its test
   part: ``[.. train ..][.. val ..][.. test ..]``), not both.
3. Everything not held out is train.

The result is a list of regions ``{"contig", "start", "end", "split"}`` (0-based,
half-open) that covers every base of every contig exactly once, in contig order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from genomamba.errors import GenomambaError, where

SPLITS = ("train", "val", "test")
HELD_OUT = ("val", "test")


@dataclass
class SplitSpec:
    val_contigs: list[str] = field(default_factory=list)
    test_contigs: list[str] = field(default_factory=list)
    holdout_bed: str | None = None
    val_fraction: float = 0.0
    test_fraction: float = 0.0

    def check(self) -> None:
        """Problems visible without the genome."""
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise GenomambaError(f"{name} must be in [0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise GenomambaError(f"val_fraction + test_fraction must be below 1, got "
                                 f"{self.val_fraction} + {self.test_fraction}")
        if self.holdout_bed and (self.val_fraction or self.test_fraction):
            raise GenomambaError("choose either holdout_bed or val_fraction/test_fraction, not both")
        both = sorted(set(self.val_contigs) & set(self.test_contigs))
        if both:
            raise GenomambaError(f"contig {both[0]!r} is in both val_contigs and test_contigs")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Holdout:
    contig: str
    start: int
    end: int
    split: str
    line: int


def read_bed(path) -> list[Holdout]:
    """Held-out intervals: BED columns chrom, start, end, name (``val`` or ``test``)."""
    path = Path(path)
    if not path.is_file():
        raise GenomambaError(f"{path}: no such file (holdout_bed)")
    out = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            text = line.rstrip("\r\n")
            if not text.strip() or text.startswith(("#", "track", "browser")):
                continue
            cols = text.split("\t")
            if len(cols) < 4:
                raise GenomambaError(f"{where(path, None, line_no)}: need 4 tab-separated columns "
                                     f"(chrom, start, end, val|test), got {len(cols)}")
            contig, start, end, split = cols[0], cols[1], cols[2], cols[3].strip()
            try:
                start, end = int(start), int(end)
            except ValueError:
                raise GenomambaError(f"{where(path, contig, line_no)}: start and end must be integers") from None
            if not 0 <= start < end:
                raise GenomambaError(f"{where(path, contig, line_no)}: need 0 <= start < end, got {start}, {end}")
            if split not in HELD_OUT:
                raise GenomambaError(f"{where(path, contig, line_no)}: name column must be 'val' or 'test', "
                                     f"got {split!r}")
            out.append(Holdout(contig, start, end, split, line_no))
    return out


def assign_splits(contigs: list[tuple[str, int]], spec: SplitSpec,
                  holdouts: list[Holdout] | None = None) -> list[dict]:
    """Regions covering every contig (see the module docstring)."""
    spec.check()
    lengths = dict(contigs)
    whole = {name: "val" for name in spec.val_contigs} | {name: "test" for name in spec.test_contigs}
    for name, split in whole.items():
        if name not in lengths:
            raise GenomambaError(f"{split}_contigs names {name!r}, which is not a contig of the genome")
    by_contig: dict[str, list[Holdout]] = {}
    for h in holdouts or []:
        bed = spec.holdout_bed
        if h.contig not in lengths:
            raise GenomambaError(f"{where(bed, h.contig, h.line)}: not a contig of the genome")
        if h.end > lengths[h.contig]:
            raise GenomambaError(f"{where(bed, h.contig, h.line)}: end {h.end} is past the contig's "
                                 f"length {lengths[h.contig]}")
        if h.contig in whole:
            raise GenomambaError(f"{where(bed, h.contig, h.line)}: the whole contig is already in "
                                 f"{whole[h.contig]}_contigs")
        by_contig.setdefault(h.contig, []).append(h)

    regions: list[dict] = []

    def add(contig, start, end, split):
        if end <= start:
            return
        last = regions[-1] if regions else None
        if last and last["contig"] == contig and last["split"] == split and last["end"] == start:
            last["end"] = end
        else:
            regions.append({"contig": contig, "start": start, "end": end, "split": split})

    for name, length in contigs:
        if name in whole:
            add(name, 0, length, whole[name])
        elif name in by_contig:
            pos = 0
            prev = None
            for h in sorted(by_contig[name], key=lambda h: h.start):
                if h.start < pos:
                    raise GenomambaError(f"{where(spec.holdout_bed, name, h.line)}: overlaps the interval "
                                         f"on line {prev.line}")
                add(name, pos, h.start, "train")
                add(name, h.start, h.end, h.split)
                pos, prev = h.end, h
            add(name, pos, length, "train")
        else:
            n_test = round(length * spec.test_fraction)
            n_val = round(length * spec.val_fraction)
            add(name, 0, length - n_val - n_test, "train")
            add(name, length - n_val - n_test, length - n_test, "val")
            add(name, length - n_test, length, "test")
    return regions


def contig_splits(regions: list[dict]) -> dict[str, str]:
    """Contig -> its split when whole, or ``"mixed"`` when it is divided."""
    seen: dict[str, set] = {}
    for r in regions:
        seen.setdefault(r["contig"], set()).add(r["split"])
    return {name: splits.pop() if len(splits) == 1 else "mixed" for name, splits in seen.items()}
