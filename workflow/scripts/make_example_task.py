"""Make the bundled example classification task: CDS vs intergenic windows of one chromosome.

Tiles the chromosome with non-overlapping windows of ``--window`` bases and keeps

- ``cds``: windows lying entirely inside one annotated CDS (either strand);
- ``intergenic``: windows that overlap no annotated feature at all (the chromosome-wide
  ``region`` line aside), so no gene, RNA, LTR, telomere, centromere or origin;

dropping windows with any N. Windows go to train/val/test by 5 kb block of the chromosome
(blocks i % 5 == 3 -> val, i % 5 == 4 -> test, the rest -> train), so that no two splits
share sequence. Each split is then balanced: the larger class keeps evenly spaced windows
(along the chromosome), as many as the smaller class has. Writes ``train.bed``, ``val.bed``, ``test.bed`` (chrom, start, end, label;
0-based, end exclusive). Deterministic: same inputs, same files.

    python workflow/scripts/make_example_task.py --gff resources/NC_001133.9.gff.gz \
        --fasta resources/NC_001133.9.fa.gz --out resources/example_task
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from genomamba.data.reference import open_reference  # noqa: E402

BLOCK = 5_000


def read_gff(path, contig, length):
    cds = np.zeros(length, dtype=bool)
    feature = np.zeros(length, dtype=bool)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            f = line.rstrip("\n").split("\t")
            if f[0] != contig or f[2] == "region":
                continue
            start, end = int(f[3]) - 1, int(f[4])
            feature[start:end] = True
            if f[2] == "CDS":
                cds[start:end] = True
    return cds, feature


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gff", required=True, help="GFF3 annotation (plain or gzip)")
    p.add_argument("--fasta", required=True, help="genome FASTA or token shards")
    p.add_argument("--contig", default=None, help="contig to use (default: the first)")
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--out", required=True, help="output directory")
    args = p.parse_args(argv)

    ref = open_reference(args.fasta, in_memory=True)  # writes no index next to the FASTA
    contig = args.contig or ref.contigs[0]
    length = ref.length(contig)
    seq = ref.fetch(contig, 0, length)
    cds, feature = read_gff(args.gff, contig, length)
    if not cds.any():
        sys.exit(f"{args.gff}: no CDS on {contig}")

    rows = {"train": {"cds": [], "intergenic": []}, "val": {"cds": [], "intergenic": []},
            "test": {"cds": [], "intergenic": []}}
    w = args.window
    for start in range(0, length - w + 1, w):
        end = start + w
        if (seq[start:end] > 3).any():
            continue
        if cds[start:end].all():
            label = "cds"
        elif not feature[start:end].any():
            label = "intergenic"
        else:
            continue
        block = start // BLOCK
        split = "val" if block % 5 == 3 else "test" if block % 5 == 4 else "train"
        rows[split][label].append(f"{contig}\t{start}\t{end}\t{label}\n")

    os.makedirs(args.out, exist_ok=True)
    for split, by_label in rows.items():
        n = min(len(v) for v in by_label.values())
        kept = [line for v in by_label.values() for line in _evenly(v, n)]
        lines = sorted(kept, key=lambda line: int(line.split("\t")[1]))
        path = os.path.join(args.out, f"{split}.bed")
        with open(path + ".tmp", "w") as fh:
            fh.writelines(lines)
        os.replace(path + ".tmp", path)
        counts = {lab: sum(line.endswith(f"\t{lab}\n") for line in lines) for lab in ("cds", "intergenic")}
        print(f"{path}: {len(lines)} windows {counts}")


def _evenly(items, n):
    """n items spread evenly over the list (all of them when n == len(items))."""
    if n >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


if __name__ == "__main__":
    main()
