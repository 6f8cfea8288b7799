"""Variant scoring: every odd VCF case, output formats, strand symmetry, the scores' meaning."""

from __future__ import annotations

import json
import os

import numpy as np
import pysam
import pytest
import torch

from genomamba.cli import main
from genomamba.data import COMPLEMENT, MASK, decode, encode, reverse_complement
from genomamba.errors import GenomambaError
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM, GenoMambaForSequenceClassification
from genomamba.score.run import ScoreSettings, run_score
from genomamba.model.labels import save_classifier

LENGTH = 300
WINDOW = 31  # flank 15


def tiny(path, rc_mode, seed=0):
    torch.manual_seed(seed)
    model = GenoMambaForMaskedLM(GenoMambaConfig(d_model=8, n_layer=1, rc_mode=rc_mode))
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("score")
    rng = np.random.default_rng(7)
    seq = "".join(rng.choice(list("ACGT"), size=LENGTH))
    (d / "ref.fa").write_text(f">c1 test contig\n{seq[:150]}\n{seq[150:]}\n")
    rc = decode(reverse_complement(encode(seq)))
    (d / "rc.fa").write_text(f">c1\n{rc}\n")
    return {"dir": d, "seq": seq, "ps": tiny(d / "ps", "ps"), "none": tiny(d / "none", "none", seed=1)}


def write_vcf(path, rows, contigs=("c1",), extra_header=()):
    lines = ["##fileformat=VCFv4.2", *[f"##contig=<ID={c}>" for c in contigs],
             '##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">', *extra_header,
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += ["\t".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def odd_cases(seq):
    """(row, what genomamba should do with each ALT). POS is 1-based."""
    b = lambda pos, n=1: seq[pos - 1 : pos - 1 + n]  # noqa: E731
    other = lambda base: "ACGT"[("ACGT".index(base) + 1) % 4]  # noqa: E731
    return [
        (("c1", 50, "snv", b(50), other(b(50)), ".", ".", "DP=7"), [{"llr", "emb"}]),
        (("c1", 2, "snv_start", b(2), other(b(2)), ".", ".", "."), [{"llr", "emb"}]),  # padded window
        (("c1", 80, "ins", b(80), b(80) + "GT", ".", ".", "."), [{"emb"}]),
        (("c1", 100, "del", b(100, 4), b(100), ".", ".", "."), [{"emb"}]),
        (("c1", 120, "multi", b(120, 3), f"{other(b(120))}{b(121, 2)},{other(other(b(120)))}{b(121, 2)},{b(120)}",
          ".", ".", "."), [{"llr", "emb"}, {"llr", "emb"}, {"emb"}]),
        (("c1", 120, "same_pos", b(120), other(other(other(b(120)))), ".", ".", "."), [{"llr", "emb"}]),
        (("c1", 140, "sym", b(140), "<DEL>", ".", ".", "."), ["symbolic_allele"]),
        (("c1", 150, "mixed", b(150), f"{other(b(150))},<INS>", ".", ".", "."), [{"llr", "emb"}, "symbolic_allele"]),
        (("c1", 160, "bnd", b(160), f"{b(160)}[c1:5[", ".", ".", "."), ["symbolic_allele"]),
        (("c1", 170, "noalt", b(170), ".", ".", ".", "."), ["no_alt"]),
        (("c1", 180, "mismatch", other(b(180)), b(180), ".", ".", "."), ["ref_mismatch"]),
        (("chrZ", 10, "unknown", "A", "C", ".", ".", "."), ["unknown_contig"]),
        (("c1", LENGTH, "past_end", b(LENGTH) + "A", b(LENGTH), ".", ".", "."), ["beyond_contig_end"]),
    ]


def run(env, vcf, out, model="ps", **kw):
    settings = ScoreSettings(model=env[model], reference=str(env["dir"] / kw.pop("ref", "ref.fa")), vcf=vcf,
                             out=str(out), window=kw.pop("window", WINDOW), **kw)
    return run_score(settings)


def test_odd_vcf_cases(env, tmp_path):
    cases = odd_cases(env["seq"])
    vcf = write_vcf(tmp_path / "in.vcf", [row for row, _ in cases], contigs=("c1", "chrZ"))

    # by default, reference problems stop the run before scoring, listing the first ones
    with pytest.raises(GenomambaError) as err:
        run(env, vcf, tmp_path / "strict.vcf.gz")
    message = str(err.value)
    assert "3 record(s) do not match" in message and "--skip-ref-mismatch" in message
    assert "c1:180 REF" in message and "chrZ" in message and f"c1:{LENGTH}" in message
    n_header = sum(line.startswith("#") for line in open(vcf))
    assert f"(record 11, line {n_header + 11})" in message
    assert not (tmp_path / "strict.vcf.gz").exists()

    # bgzipped input, --skip-ref-mismatch: every record out, each ALT handled as listed
    gz = str(tmp_path / "in.vcf.gz")
    pysam.tabix_compress(vcf, gz)
    out = tmp_path / "out.vcf.gz"
    summary = run(env, gz, out, skip_ref_mismatch=True)
    records = list(pysam.VariantFile(str(out)))
    assert [(r.contig, r.pos, r.id, r.ref, r.alts) for r in records] == \
        [(r.contig, r.pos, r.id, r.ref, r.alts) for r in pysam.VariantFile(vcf)]
    header = pysam.VariantFile(str(out)).header
    for name in ("GM_LLR", "GM_EMB", "GM_SKIP"):
        assert header.info[name].number == "A"
    expected_skips = {}
    for rec, (_, expected) in zip(records, cases):
        if rec.alts is None:
            assert expected == ["no_alt"] and "GM_SKIP" not in rec.info
            continue
        llr = rec.info.get("GM_LLR", (None,) * len(rec.alts))
        emb = rec.info.get("GM_EMB", (None,) * len(rec.alts))
        skip = rec.info.get("GM_SKIP", (".",) * len(rec.alts))
        for i, want in enumerate(expected):
            if isinstance(want, str):
                assert skip[i] == want and llr[i] is None and emb[i] is None, rec.id
                expected_skips[want] = expected_skips.get(want, 0) + 1
            else:
                assert skip[i] == "." and (llr[i] is not None) == ("llr" in want), rec.id
                assert emb[i] is not None and emb[i] >= 0, rec.id
    assert records[0].info["DP"] == 7  # input INFO kept
    expected_skips["no_alt"] = 1

    assert summary["records"] == len(cases)
    assert summary["skipped_by_reason"] == expected_skips
    scored = [w for _, e in cases for w in e if not isinstance(w, str)]
    assert summary["scored_by_score"] == {"llr": sum("llr" in w for w in scored), "emb": len(scored)}
    # shared work: one LLR forward row per distinct SNV position (3 SNVs sit at POS 120)
    snv_positions = {50, 2, 120, 150}
    assert summary["forward_rows"]["llr"] == len(snv_positions)
    saved = json.loads((tmp_path / "out.summary.json").read_text())
    assert saved["skipped_by_reason"] == expected_skips
    assert (tmp_path / "out.scores.png").stat().st_size > 1000

    # BCF output (needs every INFO id declared, END of the symbolic records included)
    run(env, gz, tmp_path / "out.bcf", skip_ref_mismatch=True)
    bcf = list(pysam.VariantFile(str(tmp_path / "out.bcf")))
    assert len(bcf) == len(records)
    for a, b in zip(bcf, records):
        assert set(a.info) == set(b.info) and a.info.get("GM_SKIP") == b.info.get("GM_SKIP")
        for name in ("GM_LLR", "GM_EMB"):
            if name in b.info:
                assert np.allclose([np.nan if v is None else v for v in a.info[name]],
                                   [np.nan if v is None else v for v in b.info[name]], rtol=1e-4, equal_nan=True)

    # plain input and TSV output: the same numbers, one row per ALT
    tsv = tmp_path / "out.tsv"
    run(env, vcf, tsv, skip_ref_mismatch=True)
    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    assert rows[0] == ["CHROM", "POS", "ID", "REF", "ALT", "GM_LLR", "GM_EMB", "GM_SKIP"]
    assert len(rows) - 1 == sum(len(e) for _, e in cases)
    vcf_llr = [v for r in records if r.alts for v in r.info.get("GM_LLR", (None,) * len(r.alts))]
    tsv_llr = [None if row[5] == "." else float(row[5]) for row in rows[1:] if row[4] != "."]
    assert np.allclose([np.nan if v is None else v for v in tsv_llr],
                       [np.nan if v is None else v for v in vcf_llr], rtol=1e-4, equal_nan=True)


def test_undeclared_contig_and_tags_are_declared_in_output(env, tmp_path):
    seq = env["seq"]
    text = ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
            f"c1\t40\t.\t{seq[39]}\tN\t.\tq10\tFOO=1\n")
    (tmp_path / "bare.vcf").write_text(text)
    run(env, str(tmp_path / "bare.vcf"), tmp_path / "bare.out.vcf")
    rec = next(iter(pysam.VariantFile(str(tmp_path / "bare.out.vcf"))))
    assert rec.info["FOO"] == "1" and list(rec.filter) == ["q10"] and rec.info["GM_EMB"][0] >= 0


def test_llr_is_the_masked_log_ratio_averaged_over_strands(env, tmp_path):
    """For a model without RC sharing, recompute GM_LLR by hand from each strand."""
    seq, pos = env["seq"], 60
    alt = "ACGT"[("ACGT".index(seq[pos - 1]) + 2) % 4]
    vcf = write_vcf(tmp_path / "one.vcf", [("c1", pos, ".", seq[pos - 1], alt, ".", ".", ".")])
    run(env, vcf, tmp_path / "one.vcf", model="none")
    got = next(iter(pysam.VariantFile(str(tmp_path / "one.vcf")))).info["GM_LLR"][0]

    model = GenoMambaForMaskedLM.from_pretrained(env["none"]).eval()
    flank = (WINDOW - 1) // 2
    window = encode(seq[pos - 1 - flank : pos + flank])
    window[flank] = MASK
    ref, alt_id = encode(seq[pos - 1])[0], encode(alt)[0]
    per_strand = []
    with torch.no_grad():
        for ids, r, a in ((window, ref, alt_id), (reverse_complement(window), COMPLEMENT[ref], COMPLEMENT[alt_id])):
            logp = torch.log_softmax(model(torch.as_tensor(ids[None].astype(np.int64)), rc_average=False)[0, flank, :4], -1)
            per_strand.append(float(logp[a] - logp[r]))
    assert got == pytest.approx(np.mean(per_strand), abs=1e-5)
    assert abs(per_strand[0] - per_strand[1]) > 1e-4  # the strands do differ: the average matters


@pytest.mark.parametrize("rc_mode", ["ps", "none"])
def test_scores_are_strand_symmetric(env, tmp_path, rc_mode):
    seq = env["seq"]
    rng = np.random.default_rng(3)
    positions = [1, 3, 40, 151, 260, LENGTH - 1, LENGTH]  # includes padded windows at both ends
    fwd_rows, rc_rows = [], []
    for pos in positions:
        ref = seq[pos - 1]
        alt = rng.choice([b for b in "ACGT" if b != ref])
        fwd_rows.append(("c1", pos, f"v{pos}", ref, alt, ".", ".", "."))
        rc_rows.append(("c1", LENGTH + 1 - pos, f"v{pos}", decode(COMPLEMENT[encode(ref)]),
                        decode(COMPLEMENT[encode(alt)]), ".", ".", "."))
    rc_rows.sort(key=lambda r: r[1])
    run(env, write_vcf(tmp_path / "f.vcf", fwd_rows), tmp_path / "f.tsv", model=rc_mode)
    run(env, write_vcf(tmp_path / "r.vcf", rc_rows), tmp_path / "r.tsv", model=rc_mode, ref="rc.fa")

    def table(path):
        rows = [line.split("\t") for line in path.read_text().splitlines()[1:]]
        return {r[2]: (float(r[5]), float(r[6])) for r in rows}

    f, r = table(tmp_path / "f.tsv"), table(tmp_path / "r.tsv")
    assert f.keys() == r.keys() and len(f) == len(positions)
    for key in f:
        assert f[key][0] == pytest.approx(r[key][0], rel=1e-4, abs=1e-5), key
        assert f[key][1] == pytest.approx(r[key][1], rel=1e-3, abs=1e-7), key
    assert len({round(v[0], 4) for v in f.values()}) > 1  # not a constant


def test_head_deltas(env, tmp_path):
    torch.manual_seed(2)
    config = GenoMambaConfig(d_model=8, n_layer=1, rc_mode="ps")
    clf = GenoMambaForSequenceClassification(config, num_labels=3).eval()
    save_classifier(tmp_path / "ft" / "model", clf, ["a", "b", "c-d"], sequence_length=21, mode="full")
    seq = env["seq"]
    rows = [("c1", 30, ".", seq[29], "G" if seq[29] != "G" else "T", ".", ".", "."),
            ("c1", 90, ".", seq[89:92], seq[89], ".", ".", ".")]
    vcf = write_vcf(tmp_path / "h.vcf", rows)
    assert main(["score", "--model", env["ps"], "--reference", str(env["dir"] / "ref.fa"), "--vcf", vcf,
                 "--out", str(tmp_path / "h.out.vcf"), "--window", str(WINDOW),
                 "--head", str(tmp_path / "ft"), "--scores", "llr"]) == 0
    records = list(pysam.VariantFile(str(tmp_path / "h.out.vcf")))
    fields = ["GM_HEAD_a", "GM_HEAD_b", "GM_HEAD_c_d"]
    for rec in records:
        deltas = [rec.info[f][0] for f in fields]
        assert sum(deltas) == pytest.approx(0, abs=1e-5) and max(map(abs, deltas)) > 0
    # by hand for the SNV: the classifier on its 21-base windows (the training length)
    pos, alt = 30, records[0].alts[0]
    ref_w = encode(seq[pos - 11 : pos + 10])
    alt_w = ref_w.copy()
    alt_w[10] = encode(alt)[0]
    with torch.no_grad():
        p = torch.softmax(clf(torch.as_tensor(np.stack([ref_w, alt_w]).astype(np.int64))), -1).numpy()
    assert np.allclose([records[0].info[f][0] for f in fields], p[1] - p[0], atol=1e-5)
    assert "GM_EMB" not in records[0].info and "GM_LLR" in records[0].info
    assert "GM_LLR" not in records[1].info  # a deletion has no LLR


def test_token_shards_reference_gives_the_same_scores(env, tmp_path):
    shards = tmp_path / "tokens"
    assert main(["tokenize", "--fasta", str(env["dir"] / "ref.fa"), "--out", str(shards), "--quiet"]) == 0
    seq = env["seq"]
    vcf = write_vcf(tmp_path / "s.vcf", [("c1", p, ".", seq[p - 1], "A" if seq[p - 1] != "A" else "C", ".", ".", ".")
                                         for p in (5, 77, 299)])
    run(env, vcf, tmp_path / "fa.tsv")
    settings = ScoreSettings(model=env["ps"], reference=str(shards), vcf=vcf, out=str(tmp_path / "sh.tsv"),
                             window=WINDOW)
    run_score(settings)
    fa, sh = ([line.split("\t") for line in (tmp_path / name).read_text().splitlines()] for name in ("fa.tsv", "sh.tsv"))
    assert [r[:5] for r in fa] == [r[:5] for r in sh] and len(fa) == 4
    assert np.allclose([[float(v) for v in r[5:7]] for r in fa[1:]], [[float(v) for v in r[5:7]] for r in sh[1:]],
                       rtol=1e-4)


def test_user_errors(env, tmp_path):
    seq = env["seq"]
    vcf = write_vcf(tmp_path / "e.vcf", [("c1", 10, ".", seq[9], "A", ".", ".", ".")])
    with pytest.raises(GenomambaError, match="name it .vcf.gz"):
        run(env, vcf, tmp_path / "out.txt")
    with pytest.raises(GenomambaError, match="no such VCF"):
        run(env, str(tmp_path / "missing.vcf"), tmp_path / "o.tsv")
    clf_dir = tmp_path / "clf"
    GenoMambaForSequenceClassification(GenoMambaConfig(d_model=8, n_layer=1), num_labels=2).save_pretrained(clf_dir)
    with pytest.raises(GenomambaError, match="--head"):
        run_score(ScoreSettings(model=str(clf_dir), reference=str(env["dir"] / "ref.fa"), vcf=vcf,
                                out=str(tmp_path / "o.tsv")))
    (tmp_path / "bad.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                                      "c1\tnotanumber\t.\tA\tC\t.\t.\t.\n")
    with pytest.raises(GenomambaError, match=r"bad\.vcf, record 1, line 3: malformed"):
        run(env, str(tmp_path / "bad.vcf"), tmp_path / "b.tsv")
    assert main(["score", "--model", env["ps"], "--reference", str(env["dir"] / "ref.fa"),
                 "--vcf", str(tmp_path / "bad.vcf"), "--out", str(tmp_path / "b.tsv")]) == 1
    assert not os.path.exists(tmp_path / "b.tsv")


@pytest.mark.parametrize("free_gib, window, expected", [(139, 16384, 112), (139, 131072, 8), (139, 1024, 256),
                                                       (0.5, 131072, 1), (5, 16384, 4), (12, 16384, 8)])
def test_gpu_batch_is_a_multiple_of_8_from_free_memory(monkeypatch, free_gib, window, expected):
    # half the free memory at GPU_BYTES_PER_BASE per base, at most MAX_GPU_BATCH, a multiple of
    # 8 from 8 up (odd batches were up to 25% slower on the H200)
    from genomamba import device as gm_device

    free = int(free_gib * 2**30)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, free))
    batch = gm_device.inference_batch(window, torch.device("cuda"))
    assert batch == expected
    fits = int(free * 0.5 // (gm_device.GPU_BYTES_PER_BASE * window))
    assert 1 <= batch <= max(1, min(gm_device.MAX_GPU_BATCH, fits))
    assert batch < 8 or batch % 8 == 0
