"""A bgzip FASTA reads like the plain one at every BGZF block boundary, for blocks of both
writers' sizes (Biopython's 65,536 bytes, which pyfaidx 0.9 mishandles at the block's first
byte, and htslib's 65,280), and ``genomamba score`` scores a variant whose window starts on a
block boundary of the bundled genome."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pysam
import pytest
import torch
from Bio import bgzf

from genomamba.cli import main
from genomamba.data.reference import open_reference
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

RESOURCES = os.path.join(os.path.dirname(__file__), "..", "resources")
GENOME = os.path.join(RESOURCES, "NC_001133.9.fa.gz")
LINE = 60


def boundary_positions(path, header_bytes):
    """0-based contig positions of the first base at or after each BGZF block start (one
    record of LINE-base lines after a header of ``header_bytes``), and the block sizes."""
    with open(path, "rb") as fh:
        blocks = [(ustart, ulen) for _, _, ustart, ulen in bgzf.BgzfBlocks(fh)]
    positions = []
    for ustart, _ in blocks[1:]:
        byte = ustart - header_bytes
        if byte > 0:
            positions.append(byte // (LINE + 1) * LINE + min(byte % (LINE + 1), LINE))
    return positions, {ulen for _, ulen in blocks}


@pytest.mark.parametrize("writer", ["biopython", "htslib"])
def test_bgzip_reads_like_plain_at_every_block_boundary(tmp_path, writer):
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGTacgt"), size=250_000))
    header = ">c1 boundaries\n"
    text = header + "".join(seq[i:i + LINE] + "\n" for i in range(0, len(seq), LINE))
    plain = tmp_path / "g.fa"
    plain.write_text(text)
    packed = tmp_path / "g.fa.gz"
    if writer == "biopython":
        with bgzf.BgzfWriter(str(packed), "wb") as f:
            f.write(text)
    else:
        pysam.tabix_compress(str(plain), str(packed))
    positions, sizes = boundary_positions(packed, len(header))
    assert len(positions) >= 3
    assert max(sizes) == (65536 if writer == "biopython" else 65280)  # the case each writer makes
    ref, expected = open_reference(packed), open_reference(plain)
    for p in positions:
        for start in range(p - 2, p + 3):
            for end in (start + 1, start + 1023):
                np.testing.assert_array_equal(ref.fetch("c1", start, end), expected.fetch("c1", start, end),
                                              err_msg=f"{writer}: bases {start}-{end}")


def test_score_a_window_that_starts_on_a_block_boundary_of_the_bundled_genome(tmp_path, capsys):
    with gzip.open(GENOME, "rt") as fh:
        header = fh.readline()
        seq = "".join(line.strip() for line in fh)
    positions, sizes = boundary_positions(GENOME, len(header))
    assert 65536 in sizes  # the bundled genome has Biopython-sized blocks
    window = 1023
    start = positions[0]  # the window's first base: the block's first base
    pos = start + window // 2 + 1  # 1-based, in the window's middle
    ref = seq[pos - 1].upper()
    alt = "ACGT"[("ACGT".index(ref) + 1) % 4]
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=NC_001133.9>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"NC_001133.9\t{pos}\t.\t{ref}\t{alt}\t.\t.\t.\n")
    torch.manual_seed(0)
    GenoMambaForMaskedLM(GenoMambaConfig(d_model=8, n_layer=1)).save_pretrained(tmp_path / "model")
    out = tmp_path / "out.tsv"
    rc = main(["score", "--model", str(tmp_path / "model"), "--reference", GENOME, "--vcf", str(vcf),
               "--out", str(out), "--window", str(window), "--device", "cpu", "--scores", "llr"])
    assert rc == 0, capsys.readouterr().err
    rows = out.read_text().splitlines()
    assert len(rows) == 2 and "GM_LLR" in rows[0]
    llr = float(rows[1].split("\t")[rows[0].split("\t").index("GM_LLR")])
    assert np.isfinite(llr)
