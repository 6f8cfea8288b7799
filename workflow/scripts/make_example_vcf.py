"""Make the bundled example VCF: synthetic variants on the example chromosome.

Not real variation: positions and ALT bases are drawn with a fixed seed, REF is read
from the genome, and INFO/REGION says whether the variant lies in a CDS, in intergenic
sequence (no annotated feature) or elsewhere (UTRs, RNAs, LTRs, ...). The file has

- ``--snvs`` SNVs (half drawn in CDS, half in intergenic sequence),
- two insertions and two deletions,
- one multi-allelic site (two SNV ALTs and a deletion),
- one symbolic allele (``<DEL>``, which genomamba score skips and reports),

sorted by position, bgzip-compressed. Deterministic: same inputs and seed, same file.

    python workflow/scripts/make_example_vcf.py --gff resources/NC_001133.9.gff.gz \
        --fasta resources/NC_001133.9.fa.gz --out resources/example.vcf.gz
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pysam

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from genomamba.data import decode  # noqa: E402
from genomamba.data.reference import open_reference  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from make_example_task import read_gff  # noqa: E402

BASES = "ACGT"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gff", required=True)
    p.add_argument("--fasta", required=True)
    p.add_argument("--out", required=True, help="output .vcf.gz")
    p.add_argument("--snvs", type=int, default=60)
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(argv)

    ref = open_reference(args.fasta, in_memory=True)
    contig = ref.contigs[0]
    length = ref.length(contig)
    seq = decode(ref.fetch(contig, 0, length))
    cds, feature = read_gff(args.gff, contig, length)
    rng = np.random.default_rng(args.seed)
    margin = 600  # keep variants away from the telomeres

    def region(pos0):
        return "cds" if cds[pos0] else "intergenic" if not feature[pos0] else "other"

    def draw(mask, n):
        candidates = np.flatnonzero(mask[margin : length - margin]) + margin
        return sorted(rng.choice(candidates, size=n, replace=False).tolist())

    rows = []  # (pos0, ref, alts)
    half = args.snvs // 2
    for pos0 in draw(cds, half) + draw(~feature, args.snvs - half):
        r = seq[pos0]
        rows.append((pos0, r, [rng.choice([b for b in BASES if b != r])]))
    indel_sites = draw(np.ones(length, dtype=bool), 5)
    for k, pos0 in enumerate(indel_sites):
        r = seq[pos0]
        if k < 2:  # insertions
            rows.append((pos0, r, [r + "".join(rng.choice(list(BASES), size=int(rng.integers(1, 6))))]))
        elif k < 4:  # deletions
            n = int(rng.integers(1, 6))
            rows.append((pos0, seq[pos0 : pos0 + 1 + n], [r]))
        else:  # multi-allelic: two SNVs and a 2-base deletion, one REF
            r3 = seq[pos0 : pos0 + 3]
            alts = [b + r3[1:] for b in BASES if b != r3[0]][:2] + [r3[0]]
            rows.append((pos0, r3, alts))
    sym = int(draw(~feature, 1)[0])
    rows.append((sym, seq[sym], ["<DEL>"]))
    rows.sort(key=lambda row: row[0])

    header = pysam.VariantHeader()
    header.add_line("##source=genomamba workflow/scripts/make_example_vcf.py (synthetic variants)")
    header.contigs.add(contig, length=length)
    header.info.add("REGION", 1, "String", "cds, intergenic (no annotated feature) or other")
    header.info.add("SVTYPE", 1, "String", "Type of structural variant")
    header.info.add("END", 1, "Integer", "End position of the variant")
    tmp = args.out + ".tmp.vcf"
    with pysam.VariantFile(tmp, "w", header=header) as out:
        for n, (pos0, r, alts) in enumerate(rows, 1):
            symbolic = alts == ["<DEL>"]
            stop = pos0 + (300 if symbolic else len(r))
            rec = out.new_record(contig=contig, start=pos0, stop=stop, alleles=(r, *alts), id=f"var{n}")
            rec.info["REGION"] = region(pos0)
            if symbolic:
                rec.info["SVTYPE"] = "DEL"
            out.write(rec)
    pysam.tabix_compress(tmp, args.out + ".tmp", force=True)
    os.remove(tmp)
    os.replace(args.out + ".tmp", args.out)
    print(f"{args.out}: {len(rows)} records")


if __name__ == "__main__":
    main()
