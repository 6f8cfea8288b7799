"""genomamba evaluate: exact metrics (checked against brute force on tied data), bootstrap
determinism, the k-mer baseline, the outputs, and one-line errors that write nothing."""

import json

import numpy as np
import pysam
import pytest

from genomamba.cli import main
from genomamba.evaluate import metrics as M
from genomamba.evaluate.kmer import KmerCentreModel
from genomamba.data.reference import open_reference
from genomamba.errors import GenomambaError


def brute_auroc(scores, is_pos):
    pos, neg = scores[is_pos], scores[~is_pos]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def brute_average_precision(scores, is_pos):
    """sum over distinct thresholds t (high to low): (new positives at t / P) * precision(s >= t)."""
    total = 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        above = scores >= t
        total += (is_pos & (scores == t)).sum() / is_pos.sum() * (is_pos & above).sum() / above.sum()
    return total


@pytest.mark.parametrize("seed", range(5))
def test_auroc_and_auprc_equal_brute_force_on_tied_data(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    scores = rng.integers(0, 6, n).astype(float)  # few values: many ties
    is_pos = rng.random(n) < 0.4
    is_pos[:2] = [True, False]
    assert M.auroc(scores, is_pos) == pytest.approx(brute_auroc(scores, is_pos), abs=1e-12)
    assert M.auprc(scores, is_pos) == pytest.approx(brute_average_precision(scores, is_pos), abs=1e-12)
    # the order of tied variants in the input does not matter
    perm = rng.permutation(n)
    assert M.auroc(scores[perm], is_pos[perm]) == pytest.approx(M.auroc(scores, is_pos), abs=1e-12)
    assert M.auprc(scores[perm], is_pos[perm]) == pytest.approx(M.auprc(scores, is_pos), abs=1e-12)


def test_auroc_edge_cases():
    assert M.auroc([1, 1, 1], [True, False, True]) == 0.5  # all tied
    assert M.auroc([3, 2, 1], [True, True, False]) == 1.0
    assert M.auroc([1, 2], [True, True]) is None
    fpr, tpr = M.roc_points(np.array([2.0, 2.0, 1.0]), np.array([True, False, False]))
    assert fpr.tolist() == [0.0, 0.5, 1.0] and tpr.tolist() == [0.0, 1.0, 1.0]


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(1)
    scores, is_pos = rng.normal(size=80), rng.random(80) < 0.5
    scores[is_pos] += 0.8
    a = M.bootstrap_ci(scores, is_pos, 200, seed=7)
    assert a == M.bootstrap_ci(scores, is_pos, 200, seed=7)
    assert a != M.bootstrap_ci(scores, is_pos, 200, seed=8)
    lo, hi = a["auroc"]
    assert lo < M.auroc(scores, is_pos) < hi and 0 < lo < hi < 1


def test_substitution_types_are_strand_collapsed_and_pair_weighted():
    assert [M.substitution_type(r, a) for r, a in ("CA", "GT", "AG", "TC", "AT")] == ["C>A", "C>A", "T>C", "T>C", "T>A"]
    assert M.substitution_type("AC", "A") is None and M.substitution_type("N", "A") is None
    scores = np.array([3, 1, 2, 0, 1, 2, 5.0])
    is_pos = np.array([1, 0, 1, 0, 0, 1, 1], bool)
    strata = ["C>A", "C>A", "C>T", "C>T", "C>T", "T>G", None]
    out = M.stratified_auroc(scores, is_pos, strata)
    assert out["types"]["C>A"] == {"auroc": 1.0, "n_positive": 1, "n_negative": 1}
    assert out["types"]["C>T"]["auroc"] == 1.0 and out["types"]["T>G"]["auroc"] is None
    assert out["pair_weighted_auroc"] == pytest.approx((1.0 * 1 + 1.0 * 2) / 3)
    assert out["n_not_snv"] == 1


def test_kmer_counts_and_leave_one_out_llr(tmp_path):
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGT"), 400)) + "N" + "".join(rng.choice(list("ACGT"), 50))
    (tmp_path / "r.fa").write_text(">c\n" + seq + "\n")
    ref = open_reference(tmp_path / "r.fa", in_memory=True)
    model = KmerCentreModel(flank=1).fit(ref)
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    rc = "".join(comp.get(b, "N") for b in reversed(seq))
    brute = {}
    for s in (seq, rc):
        for i in range(1, len(s) - 1):
            w = s[i - 1 : i + 2]
            if "N" not in w:
                brute[(w[0] + w[2], w[1])] = brute.get((w[0] + w[2], w[1]), 0) + 1
    assert model.counts.sum() == sum(brute.values())
    pos = 100  # 1-based
    ctx, ref_base = seq[pos - 2] + seq[pos], seq[pos - 1]
    alt = next(b for b in "ACGT" if b != ref_base)
    expected = np.log(brute.get((ctx, alt), 0) + 1) - np.log(brute[(ctx, ref_base)] - 1 + 1)
    assert model.llr(ref, "c", pos, ref_base, alt) == pytest.approx(expected)
    other = "A" if seq[399] != "A" else "C"
    assert model.llr(ref, "c", 400, seq[399], other) is None  # its context holds the N at 401
    with pytest.raises(GenomambaError, match="REF G of c:401 disagrees with the reference"):
        model.llr(ref, "c", 401, "G", "A")
    assert model.llr(ref, "c", 1, seq[0], "A" if seq[0] != "A" else "C") is None  # leaves the contig
    assert model.llr(ref, "c", 5, "AC", "A") is None  # not an SNV


# --- the command ---------------------------------------------------------------------------

SEQ_RNG = np.random.default_rng(11)
SEQ = "".join(SEQ_RNG.choice(list("ACGT"), 3000))


def make_inputs(tmp_path, n=60, llr_missing=()):
    """A reference, a scored VCF (GM_LLR lower for stop_gained, CSQ labels) and LABELS.tsv."""
    (tmp_path / "ref.fa").write_text(">c1\n" + SEQ + "\n")
    rng = np.random.default_rng(5)
    header = pysam.VariantHeader()
    header.contigs.add("c1", length=len(SEQ))
    header.info.add("GM_LLR", "A", "Float", "score")
    header.info.add("CSQ", 1, "String", "label")
    rows, labels = [], ["CHROM\tPOS\tREF\tALT\tlabel\textra"]
    positions = sorted(rng.choice(np.arange(10, len(SEQ) - 10), n, replace=False).tolist())
    for i, pos in enumerate(positions):
        ref = SEQ[pos - 1]
        alt = "ACGT"[("ACGT".index(ref) + 1 + i % 3) % 4]
        label = ["stop_gained", "synonymous", "synonymous", "missense"][i % 4]
        llr = round(float(rng.normal(-1.0 if label == "stop_gained" else 0.0)), 1)
        rows.append((pos, ref, alt, label, None if i in llr_missing else llr))
        labels.append(f"c1\t{pos}\t{ref}\t{alt}\t{label}\tx")
    vcf = tmp_path / "scored.vcf.gz"
    with pysam.VariantFile(str(vcf), "wz", header=header) as out:
        for pos, ref, alt, label, llr in rows:
            info = {"CSQ": label} if llr is None else {"CSQ": label, "GM_LLR": (llr,)}
            out.write(out.new_record(contig="c1", start=pos - 1, alleles=(ref, alt), info=info))
    (tmp_path / "labels.tsv").write_text("\n".join(labels) + "\n")
    return rows


def evaluate(tmp_path, *extra, labels="labels.tsv", vcf="scored.vcf.gz"):
    args = ["evaluate", "--vcf", str(tmp_path / vcf), "--out", str(tmp_path / "out"),
            "--positive", "stop_gained", "--negative", "synonymous", "bootstrap=50"]
    if labels:
        args += ["--labels", str(tmp_path / labels)]
    return main(args + list(extra))


def test_evaluate_writes_metrics_report_and_plot(tmp_path, capsys):
    rows = make_inputs(tmp_path)
    assert evaluate(tmp_path, "--stratify", "substitution", "--reference", str(tmp_path / "ref.fa")) == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    kept = [r for r in rows if r[3] != "missense"]
    scores = -np.array([r[4] for r in kept])
    is_pos = np.array([r[3] == "stop_gained" for r in kept])
    assert m["auroc"] == pytest.approx(brute_auroc(scores, is_pos))
    assert (m["n_positive"], m["n_negative"], m["n_missing"]) == (15, 30, 0)
    assert m["other_labels"] == {"missense": 15}
    assert m["auroc_ci"][0] < m["auroc"] < m["auroc_ci"][1]
    assert set(m["stratified"]["types"]) == set(M.SUBSTITUTIONS)
    k = m["kmer_baseline"]
    assert k["flank"] == 3 and k["n_positive"] + k["n_negative"] + k["n_missing"] == 45
    assert k["auroc"] is not None and 0 <= k["auroc"] <= 1
    report = (tmp_path / "out" / "report.md").read_text()
    assert "k-mer baseline" in report and "missense (15)" in report and "C>A" in report
    assert (tmp_path / "out" / "roc.png").read_bytes()[:4] == b"\x89PNG"
    first = m
    # same seed, same CIs; flipped orientation, 1 - AUROC; labels from INFO give the same
    assert evaluate(tmp_path, "--higher-is-positive") == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["auroc"] == pytest.approx(1 - first["auroc"]) and m["kmer_baseline"] is None
    assert evaluate(tmp_path, "--label-field", "CSQ", labels=None) == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["auroc"] == pytest.approx(first["auroc"]) and m["auroc_ci"] == first["auroc_ci"]


def test_missing_scores_are_an_error_unless_allowed(tmp_path, capsys):
    make_inputs(tmp_path, llr_missing=(1, 2))
    assert evaluate(tmp_path) == 1
    line = capsys.readouterr().err.strip()
    assert line.count("\n") == 0 and "labels.tsv, line 3" in line and "--allow-missing" in line
    assert not (tmp_path / "out").exists()
    assert evaluate(tmp_path, "--allow-missing") == 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["n_missing"] == 2


BAD_LABELS = {
    "empty": ("", "empty file"),
    "header only": ("CHROM\tPOS\tREF\tALT\tlabel\n", "no labelled variants"),
    "no label column": ("CHROM\tPOS\tREF\tALT\nc1\t5\tA\tC\n", "line 1: header has no 'label' column"),
    "bad POS": ("CHROM\tPOS\tREF\tALT\tlabel\nc1\t5\tA\tC\tx\nc1\tfive\tA\tC\tx\n", "line 3: POS must be"),
    "short row": ("CHROM\tPOS\tREF\tALT\tlabel\nc1\t5\tA\n", "line 2: 3 fields"),
    "two ALTs": ("CHROM\tPOS\tREF\tALT\tlabel\nc1\t5\tA\tC,G\tx\n", "line 2: one ALT per row"),
    "duplicate": ("CHROM\tPOS\tREF\tALT\tlabel\nc1\t5\tA\tC\tx\nc1\t5\ta\tc\ty\n", "line 3: variant c1:5 A>C"),
    "no positives": ("CHROM\tPOS\tREF\tALT\tlabel\nc1\t5\tA\tC\tsynonymous\n", "no variant labelled stop_gained"),
}


@pytest.mark.parametrize("case", BAD_LABELS)
def test_bad_labels_are_one_line_errors_and_write_nothing(tmp_path, capsys, case):
    make_inputs(tmp_path, n=8)
    text, words = BAD_LABELS[case]
    (tmp_path / "bad.tsv").write_text(text)
    assert evaluate(tmp_path, labels="bad.tsv") == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("genomamba: error: ") and "bad.tsv" in err, err
    assert words in err, err
    assert not (tmp_path / "out").exists()


def test_bad_scored_input_and_settings(tmp_path, capsys):
    make_inputs(tmp_path, n=8)
    (tmp_path / "empty.tsv").write_text("")
    (tmp_path / "scored.tsv").write_text("CHROM\tPOS\tREF\tALT\tGM_LLR\nc1\t5\tA\tC\tbig\n")
    cases = [
        ((), "empty.tsv", "empty.tsv: empty file"),
        ((), "scored.tsv", "scored.tsv, line 2: GM_LLR 'big' is not a number"),
        (("--score", "GM_NOPE"), "scored.vcf.gz", "declares no INFO field 'GM_NOPE'"),
        (("--positive", "synonymous"), "scored.vcf.gz", "in both the positive and negative class"),
        (("--reference", str(tmp_path / "nope.fa")), "scored.vcf.gz", "nope.fa: reference not found"),
    ]
    for extra, vcf, words in cases:
        assert evaluate(tmp_path, *extra, vcf=vcf) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err, err
        assert not (tmp_path / "out").exists()
