"""GM_PLL: the pseudo-log-likelihood score of any sequence allele: zero for REF = ALT, the
SNV LLR at flank 0, antisymmetric under swapping REF and ALT, strand-symmetric, and in
the VCF/TSV output only when asked for."""

from __future__ import annotations

import numpy as np
import pysam
import pytest
import torch

from genomamba.cli import main
from genomamba.data import decode, encode, reverse_complement
from genomamba.data.reference import open_reference
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM
from genomamba.score.engine import VariantScorer
from genomamba.score.pll import anchored_windows, scored_positions
from genomamba.score.run import ScoreSettings, run_score
from genomamba.score.variants import Allele

LENGTH = 240
WINDOW = 31
# (0-based position, REF length, ALT): an SNV, an MNV, an insertion, deletions of 1 and 3
VARIANTS = [(60, 1, "alt1"), (80, 2, "alt2"), (100, 1, "ins"), (130, 2, "del1"), (160, 4, "del3")]


def _alt(seq, pos, a, kind):
    other = lambda base: "ACGT"[("ACGT".index(base) + 1) % 4]  # noqa: E731
    ref = seq[pos : pos + a]
    if kind.startswith("alt"):
        return "".join(other(b) for b in ref)
    if kind == "ins":
        return ref + "GTA"
    return ref[0]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("pll")
    rng = np.random.default_rng(11)
    seq = "".join(rng.choice(list("ACGT"), size=LENGTH))
    models = {}
    for mode in ("ps", "none"):
        torch.manual_seed(3)
        model = GenoMambaForMaskedLM(GenoMambaConfig(d_model=8, n_layer=1, rc_mode=mode)).eval()
        models[mode] = model
        model.save_pretrained(d / mode)
    # the reference, its reverse complement, and per variant the genome that carries its ALT
    contigs = {"c1": seq, "rc": decode(reverse_complement(encode(seq)))}
    alleles = []
    for i, (pos, a, kind) in enumerate(VARIANTS):
        alt = _alt(seq, pos, a, kind)
        alleles.append(Allele(i, 0, "c1", pos, seq[pos : pos + a], alt))
        contigs[f"v{i}"] = seq[:pos] + alt + seq[pos + a :]
    (d / "ref.fa").write_text("".join(f">{name}\n{s}\n" for name, s in contigs.items()))
    return {"dir": d, "seq": seq, "models": models, "alleles": alleles, "reference": open_reference(d / "ref.fa")}


def pll(env, alleles, mode="ps", flank=2):
    scorer = VariantScorer(env["models"][mode], env["reference"], WINDOW, torch.device("cpu"), batch_size=16,
                           precision="fp32", scores=("pll",), pll_flank=flank)
    with torch.inference_mode():
        return np.array([s.pll for s in scorer.score(alleles)]), scorer.work.pll


def test_windows_keep_the_span_and_put_the_allele_at_the_centre(env):
    reference = open_reference(env["dir"] / "ref.fa")
    scorer = VariantScorer(env["models"]["ps"], reference, WINDOW, torch.device("cpu"), scores=("pll",))
    w = scorer.windows
    for allele in env["alleles"]:
        a, b = len(allele.ref), len(allele.alt)
        left_ref, left_alt = anchored_windows(w, allele, "left")
        right_ref, right_alt = anchored_windows(w, allele, "right")
        assert {len(x) for x in (left_ref, left_alt, right_ref, right_alt)} == {WINDOW}
        assert decode(left_ref[w.flank : w.flank + a]) == allele.ref
        assert decode(left_alt[w.flank : w.flank + b]) == allele.alt
        assert decode(right_ref[w.flank + 1 - a : w.flank + 1]) == allele.ref  # the last base at the centre
        assert decode(right_alt[w.flank + 1 - b : w.flank + 1]) == allele.alt
        m = max(a, b)
        assert len(scored_positions(w, allele, "left", 2)) == m + 4 == len(scored_positions(w, allele, "right", 2))


def test_zero_for_ref_equal_alt_and_the_llr_at_flank_zero(env):
    seq = env["seq"]
    same = [Allele(0, 0, "c1", p, seq[p], seq[p]) for p in (30, 61)]
    values, _ = pll(env, same)
    assert (values == 0.0).all()  # exactly: the same masked windows, run once

    snv = env["alleles"][0]
    scorer = VariantScorer(env["models"]["ps"], env["reference"], WINDOW, torch.device("cpu"), precision="fp32",
                           scores=("llr", "pll"), pll_flank=0)
    with torch.inference_mode():
        (got,) = scorer.score([snv])
    assert got.pll == pytest.approx(got.llr, abs=1e-9) and got.llr != 0


@pytest.mark.parametrize("mode", ["ps", "none"])
def test_antisymmetric_and_strand_symmetric(env, mode):
    alleles = env["alleles"]
    values, rows = pll(env, alleles, mode)
    assert np.all(np.abs(values) > 1e-6)  # real changes, real scores
    # SNV: 1 + 4k rows; the others at most 4 (m + 2k)
    assert rows <= 9 + sum(4 * (max(len(a.ref), len(a.alt)) + 4) for a in alleles[1:])

    # swapped: REF and ALT exchanged, on the genome that carries the ALT
    swapped = [Allele(i, 0, f"v{i}", a.pos, a.alt, a.ref) for i, a in enumerate(alleles)]
    back, _ = pll(env, swapped, mode)
    assert np.allclose(back, -values, atol=1e-6)

    # the other strand: the same change on the reverse-complemented genome
    flipped = [Allele(i, 0, "rc", LENGTH - a.pos - len(a.ref), decode(reverse_complement(encode(a.ref))),
                      decode(reverse_complement(encode(a.alt)))) for i, a in enumerate(alleles)]
    other, _ = pll(env, flipped, mode)
    assert np.allclose(other, values, atol=1e-6)


def test_vcf_field_only_when_asked_and_bad_flank(env, tmp_path):
    seq = env["seq"]
    rows = [("c1", a.pos + 1, f"v{i}", a.ref, a.alt) for i, a in enumerate(env["alleles"])]
    rows.append(("c1", 31, "same", seq[30], seq[30]))
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=c1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join("\t".join(map(str, r)) + "\t.\t.\t.\n" for r in rows))
    model, ref = str(env["dir"] / "ps"), str(env["dir"] / "ref.fa")
    out = tmp_path / "out.vcf.gz"
    result = run_score(ScoreSettings(model=model, reference=ref, vcf=str(vcf), out=str(out), window=WINDOW,
                                     scores=("llr", "pll"), precision="fp32"))
    assert result["scored_by_score"]["pll"] == len(rows) and result["forward_rows"]["pll"] > 0
    header = pysam.VariantFile(str(out)).header
    assert "GM_PLL" in header.info and header.info["GM_PLL"].number == "A"
    got = {r.id: r.info["GM_PLL"][0] for r in pysam.VariantFile(str(out))}
    assert got["same"] == 0.0
    assert np.allclose([got[f"v{i}"] for i in range(len(VARIANTS))], pll(env, env["alleles"])[0], atol=1e-6)

    plain = tmp_path / "plain.tsv"
    run_score(ScoreSettings(model=model, reference=ref, vcf=str(vcf), out=str(plain), window=WINDOW))
    assert "GM_PLL" not in plain.read_text().splitlines()[0]  # off by default

    assert main(["score", "--model", model, "--reference", ref, "--vcf", str(vcf), "--out",
                 str(tmp_path / "bad.tsv"), "--window", str(WINDOW), "scores=[pll]", "pll_flank=-1"]) == 1
    assert not (tmp_path / "bad.tsv").exists()
