"""genomamba track: per-position bigWig and all-ALT TSV, equal to genomamba score's GM_LLR;
bad regions; an interrupted run leaves nothing finished-looking and resumes."""

from __future__ import annotations

import csv
import os

import numpy as np
import pysam
import pytest
import torch

from genomamba.cli import main
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

WINDOW = 31  # flank 15
LENGTH = 200
N_RUN = (100, 104)  # 0-based, end exclusive: NNNN on c1


from model_helpers import one_thread  # noqa: E402,F401  (autouse: one torch thread per module)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("track")
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGT"), size=LENGTH))
    seq = seq[: N_RUN[0]] + "N" * (N_RUN[1] - N_RUN[0]) + seq[N_RUN[1]:]
    short = "".join(rng.choice(list("ACGT"), size=60))
    (d / "ref.fa").write_text(f">c1\n{seq}\n>c2\n{short}\n")
    models = {}
    for mode, seed in (("ps", 0), ("none", 1)):
        torch.manual_seed(seed)
        model = GenoMambaForMaskedLM(GenoMambaConfig(d_model=8, n_layer=1, rc_mode=mode))
        with torch.no_grad():  # off the symmetric initialisation, so scores differ by position
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
        model.save_pretrained(d / mode)
        models[mode] = str(d / mode)
    return {"dir": d, "ref": str(d / "ref.fa"), "seqs": {"c1": seq, "c2": short}, **models}


def track(env, out, *extra, model="ps", window=WINDOW):
    return main(["track", "--model", env[model], "--reference", env["ref"], "--out", str(out),
                 "--window", str(window), "--device", "cpu", *map(str, extra)])


def bigwig_values(path, contig, start, end):
    import pyBigWig

    with pyBigWig.open(str(path)) as bw:
        return np.array(bw.values(contig, start, end), dtype=np.float64), bw.chroms()


def alts_table(path):
    """{(chrom, pos): (ref, {base: llr})} from an --all-alts TSV."""
    out = {}
    with pysam.TabixFile(str(path)) as tbx:
        assert tbx.header[-1].split("\t") == ["#chrom", "pos", "ref", "A", "C", "G", "T"]
        for contig in tbx.contigs:
            for line in tbx.fetch(contig):
                f = line.split("\t")
                out[(f[0], int(f[1]))] = (f[2], dict(zip("ACGT", map(float, f[3:7]))))
    return out


def write_bed(path, lines):
    path.write_text("".join("\t".join(map(str, line)) + "\n" for line in lines))
    return str(path)


@pytest.mark.parametrize("mode", ["ps", "none"])
def test_track_equals_score_gm_llr_at_the_same_snvs(env, tmp_path, mode):
    seq = env["seqs"]["c1"]
    positions = [1, 2, 16, 57, 99, 105, 183, LENGTH]  # 1-based: padded windows at both ends, beside the Ns
    rows = []
    for pos in positions:
        ref = seq[pos - 1]
        rows += [f"c1\t{pos}\t.\t{ref}\t{alt}\t.\t.\t." for alt in "ACGT" if alt != ref]
    vcf = tmp_path / "snvs.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=c1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "\n".join(rows) + "\n")
    assert main(["score", "--model", env[mode], "--reference", env["ref"], "--vcf", vcf, "--out",
                 tmp_path / "s.tsv", "--window", WINDOW, "--scores", "llr", "--device", "cpu"]) == 0
    with open(tmp_path / "s.tsv") as fh:
        scored = [r for r in csv.DictReader(fh, delimiter="\t")]
    assert len(scored) == 3 * len(positions)
    bed = write_bed(tmp_path / "r.bed", [("c1", 0, 60), ("c1", 90, LENGTH)])
    assert track(env, tmp_path / "t.bw", "--regions", bed, "--all-alts", tmp_path / "a.tsv.gz", model=mode) == 0

    alts = alts_table(tmp_path / "a.tsv.gz")
    values, chroms = bigwig_values(tmp_path / "t.bw", "c1", 0, LENGTH)
    assert chroms == {"c1": LENGTH, "c2": 60}
    for r in scored:
        ref, llr = alts[("c1", int(r["POS"]))]
        assert ref == r["REF"] and llr[ref] == 0
        assert llr[r["ALT"]] == pytest.approx(float(r["GM_LLR"]), rel=1e-5, abs=1e-5)
    for pos in positions:
        gm = [float(r["GM_LLR"]) for r in scored if int(r["POS"]) == pos]
        assert values[pos - 1] == pytest.approx(min(gm), rel=1e-5, abs=1e-5)
    assert len({round(v, 4) for v in values[~np.isnan(values)]}) > 20  # not a constant track
    # no value at the Ns or outside the regions; the TSV has no rows there either
    assert np.isnan(values[N_RUN[0] : N_RUN[1]]).all() and np.isnan(values[60:90]).all()
    assert not np.isnan(values[:60]).any() and not np.isnan(values[N_RUN[1]:]).any()
    assert ("c1", N_RUN[0] + 1) not in alts and ("c1", 61) not in alts and ("c1", 60) in alts
    assert len(alts) == 60 + (LENGTH - 90) - (N_RUN[1] - N_RUN[0])
    assert not os.path.exists(tmp_path / "t.bw.parts")


def test_each_score_follows_from_the_alt_llrs(env, tmp_path):
    """mean-llr, entropy and ref-logp over the whole genome (default: every contig), checked
    against the all-ALT TSV: p(b) = p(ref) exp(LLR_b), so p(ref) = 1 / sum_b exp(LLR_b)."""
    assert track(env, tmp_path / "min.bw", "--all-alts", tmp_path / "a.tsv.gz") == 0
    alts = alts_table(tmp_path / "a.tsv.gz")
    assert len(alts) == LENGTH + 60 - (N_RUN[1] - N_RUN[0])
    for score in ("mean-llr", "entropy", "ref-logp"):
        assert track(env, tmp_path / f"{score}.bw", "--score", score) == 0
    for contig, length in (("c1", LENGTH), ("c2", 60)):
        got = {s: bigwig_values(tmp_path / f"{s}.bw", contig, 0, length)[0]
               for s in ("min", "mean-llr", "entropy", "ref-logp")}
        for pos in range(1, length + 1):
            if (contig, pos) not in alts:
                assert all(np.isnan(v[pos - 1]) for v in got.values())
                continue
            ref, llr = alts[(contig, pos)]
            others = [v for b, v in llr.items() if b != ref]
            p = np.exp(list(llr.values())) / np.exp(list(llr.values())).sum()
            assert got["min"][pos - 1] == pytest.approx(min(others), abs=2e-5)
            assert got["mean-llr"][pos - 1] == pytest.approx(np.mean(others), abs=2e-5)
            assert got["ref-logp"][pos - 1] == pytest.approx(np.log(p["ACGT".index(ref)]), abs=2e-5)
            assert got["entropy"][pos - 1] == pytest.approx(-(p * np.log(p)).sum(), abs=2e-5)


def test_overlapping_regions_are_merged(env, tmp_path):
    bed = write_bed(tmp_path / "o.bed", [("c2", 10, 30), ("c1", 5, 20), ("c2", 20, 40), ("c2", 40, 45)])
    assert track(env, tmp_path / "m.bw", "--regions", bed) == 0
    bed1 = write_bed(tmp_path / "one.bed", [("c1", 5, 20), ("c2", 10, 45)])
    assert track(env, tmp_path / "one.bw", "--regions", bed1) == 0
    for contig, length in (("c1", LENGTH), ("c2", 60)):
        a, _ = bigwig_values(tmp_path / "m.bw", contig, 0, length)
        b, _ = bigwig_values(tmp_path / "one.bw", contig, 0, length)
        np.testing.assert_array_equal(a, b)
    assert np.flatnonzero(~np.isnan(bigwig_values(tmp_path / "m.bw", "c2", 0, 60)[0])).tolist() == list(range(10, 45))


@pytest.mark.parametrize("lines, message", [
    ([("c1", 0, 10), ("c1", 190, LENGTH + 1)], "line 2: end 201 is beyond the end of c1 (200 bases)"),
    ([("c1", 0, 10), ("chrZ", 0, 10)], "line 2: contig 'chrZ' not in"),
    ([("c1", 10, 5)], "line 1: need 0 <= start < end"),
    ([("c1", "x", 5)], "line 1: start/end are not integers"),
    ([], "no regions"),
])
def test_bad_regions_are_one_line_errors_before_any_work(env, tmp_path, capsys, monkeypatch, lines, message):
    import genomamba.track.run as track_run

    monkeypatch.setattr(track_run.PartStore, "__init__", lambda *a: pytest.fail("work started"))
    bed = write_bed(tmp_path / "bad.bed", lines)
    assert track(env, tmp_path / "t.bw", "--regions", bed) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("genomamba: error: ") and "\n" not in err
    assert bed in err and message in err
    assert os.listdir(tmp_path) == ["bad.bed"]


def test_bad_outputs_are_one_line_errors(env, tmp_path, capsys):
    assert track(env, tmp_path / "t.wig") == 1
    assert "--out must end in .bw or .bigwig" in capsys.readouterr().err
    assert track(env, tmp_path / "t.bw", "--all-alts", tmp_path / "a.tsv") == 1
    assert "--all-alts must end in .tsv.gz" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_an_interrupted_track_leaves_no_output_and_resumes_from_its_parts(env, tmp_path, monkeypatch):
    import genomamba.track.run as track_run

    assert track(env, tmp_path / "fresh.bw", "part_size=50") == 0
    real, calls = track_run.part_logp, []

    def interrupted(model, reference, part, *rest):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(part)
        return real(model, reference, part, *rest)

    monkeypatch.setattr(track_run, "part_logp", interrupted)
    out, alts = tmp_path / "t.bw", tmp_path / "a.tsv.gz"
    assert track(env, out, "part_size=50", "--all-alts", alts) == 130
    assert not out.exists() and not alts.exists() and not os.path.exists(f"{alts}.tbi")
    parts = tmp_path / "t.bw.parts"
    assert sorted(os.listdir(parts)) == ["part-000000.npy", "part-000001.npy", "parts.json"]
    assert [f for f in os.listdir(tmp_path) if f.startswith(".")] == []  # no temporaries left

    calls.clear()
    monkeypatch.setattr(track_run, "part_logp", lambda *a: calls.append(a[2]) or real(*a))
    assert track(env, out, "part_size=50", "--all-alts", alts) == 0
    # c1 is 4 parts of 50, c2 one of 50 and one of 10: the first two came from the parts
    assert [(p.contig, p.start) for p in calls] == [("c1", 100), ("c1", 150), ("c2", 0), ("c2", 50)]
    assert not parts.exists() and alts.exists() and os.path.exists(f"{alts}.tbi")
    for contig, length in (("c1", LENGTH), ("c2", 60)):
        np.testing.assert_array_equal(bigwig_values(out, contig, 0, length)[0],
                                      bigwig_values(tmp_path / "fresh.bw", contig, 0, length)[0])



def test_parts_of_another_run_are_not_reused(env, tmp_path, monkeypatch, capsys):
    import genomamba.track.run as track_run

    real, calls = track_run.part_logp, []

    def interrupted(*args):
        if calls:
            raise KeyboardInterrupt
        calls.append(args[2])
        return real(*args)

    monkeypatch.setattr(track_run, "part_logp", interrupted)
    out = tmp_path / "t.bw"
    assert track(env, out, "part_size=100") == 130
    assert sorted(os.listdir(tmp_path / "t.bw.parts")) == ["part-000000.npy", "parts.json"]
    calls.clear()
    monkeypatch.setattr(track_run, "part_logp", lambda *a: calls.append(a[2]) or real(*a))
    assert track(env, out, "part_size=100", window=21) == 0
    assert "holds parts of another run; starting over" in capsys.readouterr().err
    assert len(calls) == 3  # c1: 2 parts, c2: 1, all computed again
    assert track(env, tmp_path / "w21.bw", "part_size=100", window=21) == 0
    np.testing.assert_array_equal(bigwig_values(out, "c1", 0, LENGTH)[0],
                                  bigwig_values(tmp_path / "w21.bw", "c1", 0, LENGTH)[0])


def test_approximate_mode_masks_several_positions_per_window(env, tmp_path, capsys):
    """--masks-per-window 3 --mask-spacing 5: each position's LLRs come from the window the
    documented geometry gives (blocks of 15 bases; window i of a block masks its bases i,
    i + 5, i + 10 that are A/C/G/T, centred on i + 5), checked against the model's own
    forward on that window built here; the Ns stay without a value, and the run prints
    its agreement with exact scores at sampled positions."""
    from genomamba.data.vocab import MASK, PAD, encode
    from genomamba.model.locate import locate_model

    assert track(env, tmp_path / "a.bw", "--masks-per-window", 3, "--mask-spacing", 5,
                 "--all-alts", tmp_path / "a.tsv.gz", "agreement_sample=50") == 0
    err = capsys.readouterr().err
    assert "approximate (3 masks per window, 5 bases apart)" in err and "Pearson r" in err
    alts = alts_table(tmp_path / "a.tsv.gz")
    assert len(alts) == LENGTH + 60 - (N_RUN[1] - N_RUN[0])  # every A/C/G/T base, as exact mode
    model = locate_model(env["ps"]).load(torch.device("cpu"))
    seq = encode(env["seqs"]["c1"])
    flank = WINDOW // 2
    for q in (0, 7, 99, 104, 111, 186, LENGTH - 1):  # 0-based: block edges, beside the Ns, the last block
        block, r = divmod(q, 15)
        i = r % 5
        masks = [p for p in (block * 15 + i + 5 * j for j in range(3)) if p < LENGTH and seq[p] < 4]
        centre = block * 15 + i + 5
        window = np.full(WINDOW, PAD, dtype=np.int64)
        for k in range(WINDOW):
            if 0 <= centre - flank + k < LENGTH:
                window[k] = seq[centre - flank + k]
        for p in masks:
            window[flank + p - centre] = MASK
        with torch.no_grad():
            logits = model(torch.from_numpy(window)[None], rc_average=True)[0, flank + q - centre, :4]
        logp = torch.log_softmax(logits.double(), dim=-1).numpy()
        ref, llr = alts[("c1", q + 1)]
        own = "ACGT".index(ref)
        for b, base in enumerate("ACGT"):
            assert llr[base] == pytest.approx(logp[b] - logp[own], abs=2e-5), (q, base)


def test_approximate_mode_that_does_not_fit_the_window_is_a_one_line_error(env, tmp_path, capsys):
    assert track(env, tmp_path / "a.bw", "--masks-per-window", 4, "--mask-spacing", 8) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit in a window of 31" in err[0] and "Traceback" not in err[0]
    assert not os.path.exists(tmp_path / "a.bw") and not os.path.exists(tmp_path / "a.bw.parts")


def test_a_rerun_removes_the_all_alts_temporary_a_killed_run_left(env, tmp_path):
    """A SIGKILL while the all-ALT TSV is written leaves its plain temporary beside it; it is
    named like the output's other temporaries, so the next run removes it."""
    alts = tmp_path / "a.tsv.gz"
    stale = tmp_path / ".a.tsv.gz.k1ll3d.tsv.tmp"
    stale.write_text("#chrom\tpos\tref\tA\tC\tG\tT\nc1\t1\tA\t0\n")
    other = tmp_path / ".b.tsv.gz.k1ll3d.tsv.tmp"  # another output's: not this run's to remove
    other.write_text("x")
    assert track(env, tmp_path / "t.bw", "--all-alts", alts) == 0
    assert not stale.exists() and other.exists() and alts.exists()
    assert sorted(f for f in os.listdir(tmp_path) if f.startswith(".")) == [other.name]
