"""genomamba embed: what the HDF5 holds, strand invariance, layers, batching that does not
change results, streaming in any order, and bad input."""

from __future__ import annotations

import os
import re
import shutil

import h5py
import numpy as np
import pytest
import torch

from genomamba.cli import main
from genomamba.data import decode, reverse_complement
from genomamba.data.reference import open_reference
from genomamba.infer.inputs import length_batches
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM
GENOME = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources", "NC_001133.9.fa.gz")
CONTIG = "NC_001133.9"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("embed")
    shutil.copy(GENOME, d / "chrI.fa.gz")
    models = {}
    for mode in ("ps", "none"):
        torch.manual_seed(1)
        model = GenoMambaForMaskedLM(GenoMambaConfig(d_model=16, n_layer=2, d_state=8, rc_mode=mode)).eval()
        model.save_pretrained(d / mode)
        models[mode] = model
    (d / "r.bed").write_text(f"track name=x\n{CONTIG}\t1000\t1064\tcds\t0\t+\n{CONTIG}\t1000\t1064\tcds\t0\t-\n"
                             f"{CONTIG}\t5000\t5101\n{CONTIG}\t7000\t7064\tintergenic\n")
    return {"dir": d, "models": models, "genome": str(d / "chrI.fa.gz"), "bed": str(d / "r.bed")}


def embed(env, out, *args, model="ps", source=None):
    source = source or ["--bed", env["bed"], "--genome", env["genome"]]
    assert main(["embed", "--model", str(env["dir"] / model), *source, "--out", str(out), *args]) == 0
    with h5py.File(out) as f:
        return {k: f[k][:] for k in f}, dict(f.attrs)


def test_layout_and_a_ps_model_is_strand_invariant(env, tmp_path):
    data, attrs = embed(env, tmp_path / "e.h5")
    assert data["embeddings"].shape == (4, 16) and data["embeddings"].dtype == np.float32
    assert [n.decode() for n in data["names"]] == [f"{CONTIG}:1001-1064", f"{CONTIG}:1001-1064(-)",
                                                   f"{CONTIG}:5001-5101", f"{CONTIG}:7001-7064"]
    assert list(data["lengths"]) == [64, 64, 101, 64]
    assert [x.decode() for x in data["labels"]] == ["cds", "cds", "", "intergenic"]
    assert attrs["format"] == "genomamba-embeddings" and attrs["pooling"] == "mean" and attrs["layer"] == 2
    assert attrs["d"] == 16 and attrs["model_sha256"]
    e = data["embeddings"]
    assert np.array_equal(e[0], e[1]) and not np.allclose(e[0], e[3])
    for pooling in ("max", "center"):
        e = embed(env, tmp_path / f"{pooling}.h5", "--pooling", pooling)[0]["embeddings"]
        assert np.array_equal(e[0], e[1]), pooling

    # per position: the minus strand's rows are the plus strand's, reversed
    (tmp_path / "same.bed").write_text(f"{CONTIG}\t1000\t1064\tx\t0\t+\n{CONTIG}\t1000\t1064\tx\t0\t-\n")
    per = embed(env, tmp_path / "p.h5", "--pooling", "none", "--dtype", "float16",
                source=["--bed", str(tmp_path / "same.bed"), "--genome", env["genome"]])[0]["embeddings"]
    assert per.shape == (2, 64, 16) and per.dtype == np.float16
    assert np.array_equal(per[0], per[1][::-1])


def test_features_match_the_model_and_layer_zero(env, tmp_path):
    model = env["models"]["ps"]
    ids = torch.as_tensor(open_reference(env["genome"]).fetch(CONTIG, 1000, 1064).astype(np.int64))[None]
    with torch.no_grad():
        layout = model.embed(ids)[0]  # Caduceus layout [h(x), flip(h(rc x))]
        expected = 0.5 * (layout[:, :16].mean(0) + layout[:, 16:].flip(-1).mean(0))
        table = model.backbone.embedding.weight
        layer0 = 0.5 * (table[ids[0]].mean(0) + table[model.backbone.complement[ids[0]]].mean(0))
    got = embed(env, tmp_path / "e.h5")[0]["embeddings"][0]
    assert np.allclose(got, expected.numpy(), atol=1e-5)
    got0 = embed(env, tmp_path / "l0.h5", "--layer", "0")[0]["embeddings"][0]
    assert np.allclose(got0, layer0.numpy(), atol=1e-6)
    mid = embed(env, tmp_path / "l1.h5", "--layer", "-2")
    assert mid[1]["layer"] == 1 and not np.allclose(mid[0]["embeddings"][0], got, atol=1e-3)


def test_any_batching_any_order_the_same_results(env, tmp_path):
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), size=int(n))) for n in rng.integers(20, 60, size=23)]
    seqs[5] = seqs[6] = seqs[7][: len(seqs[7])]  # some equal lengths
    tsv = tmp_path / "s.tsv"
    tsv.write_text("name\tsequence\n" + "".join(f"s{i}\t{s}\n" for i, s in enumerate(seqs)))
    source = ["--tsv", str(tsv)]
    together = embed(env, tmp_path / "a.h5", "--batch-size", "4", model="none", source=source)[0]
    alone = embed(env, tmp_path / "b.h5", "--batch-size", "1", model="none", source=source)[0]
    assert [n.decode() for n in together["names"]] == [f"s{i}" for i in range(len(seqs))]
    assert list(together["lengths"]) == [len(s) for s in seqs]
    assert np.allclose(together["embeddings"], alone["embeddings"], atol=1e-5)

    # batches: one length each, the indices of every region once, partial batches flushed early
    class R:
        def __init__(self, n):
            self.tokens = np.zeros(n, np.uint8)

    regions = [R(n) for n in (5, 6, 5, 7, 5, 6, 8, 9, 5)]
    batches = list(length_batches(regions, batch_size=2, pending=3))
    assert sorted(i for b in batches for i, _ in b) == list(range(len(regions)))
    assert all(len({len(r.tokens) for _, r in b}) == 1 and len(b) <= 2 for b in batches)


def test_fasta_input(env, tmp_path):
    reference = open_reference(env["genome"])
    fwd = decode(reference.fetch(CONTIG, 1000, 1064))
    rc = decode(reverse_complement(reference.fetch(CONTIG, 1000, 1064)))
    fa = tmp_path / "s.fa"
    fa.write_text(f">plus some text\n{fwd[:30]}\n{fwd[30:]}\n>minus\n{rc}\n")
    data = embed(env, tmp_path / "f.h5", source=["--fasta", str(fa)])[0]
    assert [n.decode() for n in data["names"]] == ["plus", "minus"] and "labels" not in data
    bed = embed(env, tmp_path / "e.h5")[0]["embeddings"][0]
    assert np.array_equal(data["embeddings"][0], data["embeddings"][1])
    assert np.allclose(data["embeddings"][0], bed, atol=1e-6)


@pytest.mark.parametrize("kind, content, message", [
    ("bed", f"{CONTIG}\t10\t20\nchrZ\t1\t10\n", r"r\.bed, record 'chrZ:2-10', line 2: contig 'chrZ' not in"),
    ("bed", f"{CONTIG}\t230000\t230300\n", r"r\.bed, record .*, line 1: end 230300 is beyond the end of NC_001133.9"),
    ("bed", "", r"r\.bed: no regions"),
    ("fasta", "", r"s\.fa.*empty file"),
    ("fasta", ">a\nACGT\n>b\n\n>c\nAC\n", r"s\.fa.*'b'.*line 3"),
    ("tsv", "ACGT\nAXGT\n", r"s\.tsv, record 'line2', line 2"),
])
def test_bad_input_is_one_line_and_writes_nothing(env, tmp_path, capsys, kind, content, message):
    path = tmp_path / {"bed": "r.bed", "fasta": "s.fa", "tsv": "s.tsv"}[kind]
    path.write_text(content)
    out = tmp_path / "out.h5"
    out.write_bytes(b"an earlier result")
    source = ["--bed", str(path), "--genome", env["genome"]] if kind == "bed" else [f"--{kind}", str(path)]
    capsys.readouterr()
    assert main(["embed", "--model", str(env["dir"] / "ps"), *source, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("genomamba: error: ") and re.search(message, err), err
    assert out.read_bytes() == b"an earlier result"  # untouched, and no temporary left
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.h5", path.name])


def test_bad_settings(env, tmp_path, capsys):
    base = ["embed", "--model", str(env["dir"] / "ps"), "--bed", env["bed"], "--genome", env["genome"]]
    assert main([*base, "--out", str(tmp_path / "x.h5"), "--layer", "3"]) == 1
    assert "layers 0 (embedding) to 2" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "x.h5"), "--pooling", "none"]) == 1  # mixed lengths
    assert "needs regions of one length" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "x.npy")]) == 1
    assert main(["embed", "--model", str(env["dir"] / "ps"), "--bed", env["bed"], "--out", str(tmp_path / "x.h5")]) == 1
    assert "needs --genome" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
