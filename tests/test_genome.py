"""genomamba.data.Genome: random access, strands, soft-mask, N runs, splits, errors."""

import json
import pickle
import shutil

import numpy as np
import pytest
from Bio.Seq import reverse_complement as bio_revcomp

from genomamba.cli import main
from genomamba.data import Genome
from genomamba.data.splits import SplitSpec
from genomamba.data.tokenize import tokenize_fasta
from genomamba.data.vocab import decode, encode
from genomamba.errors import GenomambaError

WINDOW = 131_072


def random_contig(rng, length):
    seq = rng.choice(np.frombuffer(b"ACGT", np.uint8), size=length)
    for _ in range(5):
        start = int(rng.integers(0, length))
        seq[start : start + int(rng.integers(1, 5000))] = ord("N")
    lower = np.zeros(length, bool)
    for _ in range(20):
        start = int(rng.integers(0, length))
        lower[start : start + int(rng.integers(1, 3000))] = True
    seq[lower] += 32
    return seq.tobytes().decode()


def write(path, contigs):
    with open(path, "w") as f:
        for name, seq in contigs.items():
            f.write(f">{name}\n")
            f.writelines(seq[i : i + 70] + "\n" for i in range(0, len(seq), 70))
    return path


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    rng = np.random.default_rng(11)
    contigs = {"chrL": random_contig(rng, 300_001), "chrS": random_contig(rng, 999), "chrT": "acgtNNNNac"}
    tmp = tmp_path_factory.mktemp("genome")
    tokenize_fasta(write(tmp / "g.fa", contigs), tmp / "tok", log=False)
    return Genome(tmp / "tok"), contigs


def test_contigs_and_lengths(genome):
    g, contigs = genome
    assert g.contigs == ["chrL", "chrS", "chrT"]
    assert [g.length(c) for c in g.contigs] == [len(s) for s in contigs.values()]
    assert "chrS" in g and "chrX" not in g


def test_fetch_windows(genome):
    g, contigs = genome
    seq = contigs["chrL"]
    tokens = encode(seq)
    rng = np.random.default_rng(0)
    starts = [0, 65_535, 65_536, len(seq) - WINDOW, *rng.integers(0, len(seq) - WINDOW, 8)]
    for start in starts:
        start = int(start)
        got = g.fetch("chrL", start, start + WINDOW)
        assert got.dtype == np.uint8 and got.shape == (WINDOW,)
        assert (got == tokens[start : start + WINDOW]).all()
    assert g.fetch("chrL", 5, 5).shape == (0,)
    assert decode(g.fetch("chrT", 0, 10)) == "ACGTNNNNAC"


def test_minus_strand_is_the_reverse_complement(genome):
    g, contigs = genome
    for start, end in [(0, 10), (3, 7), (299_000, 300_001), (100, 100 + WINDOW)]:
        plus = contigs["chrL"][start:end].upper()
        assert decode(g.fetch("chrL", start, end, strand="-")) == bio_revcomp(plus)
    assert decode(g.fetch("chrT", 0, 10, "-")) == "GTNNNNACGT"


def test_softmask_at_any_offset(genome):
    g, contigs = genome
    seq = contigs["chrL"]
    lower = np.array([c.islower() for c in seq])
    for start, end in [(0, 1), (3, 11), (7, 8), (12_345, 12_345 + WINDOW), (299_990, 300_001), (8, 16)]:
        got = g.softmask("chrL", start, end)
        assert got.dtype == bool and (got == lower[start:end]).all()


def test_n_runs(genome):
    g, contigs = genome
    import re

    for name, seq in contigs.items():
        want = [[m.start(), m.end()] for m in re.finditer("[Nn]+", seq)]
        assert g.n_runs(name).tolist() == want
        assert g.n_runs(name).shape[1] == 2


@pytest.mark.parametrize("call", [
    lambda g: g.fetch("chrX", 0, 1), lambda g: g.length("chrX"), lambda g: g.softmask("chrX", 0, 1),
    lambda g: g.split("chrX"), lambda g: g.n_runs("chrX"),
])
def test_unknown_contig(genome, call):
    g, _ = genome
    with pytest.raises(GenomambaError, match="unknown contig 'chrX'"):
        call(g)


@pytest.mark.parametrize("start,end", [(-1, 5), (5, 4), (0, 11)])
def test_out_of_range(genome, start, end):
    g, _ = genome
    with pytest.raises(GenomambaError, match=r"record 'chrT': interval .* is outside \[0, 10\)"):
        g.fetch("chrT", start, end)


def test_bad_strand_and_split_names(genome):
    g, _ = genome
    with pytest.raises(GenomambaError, match="strand"):
        g.fetch("chrT", 0, 1, strand="+1")
    with pytest.raises(GenomambaError, match="unknown split 'training'"):
        g.intervals("training")


def test_pickles_for_dataloader_workers(genome):
    g, contigs = genome
    g.fetch("chrS", 0, 10)  # opens a file handle
    clone = pickle.loads(pickle.dumps(g))
    assert decode(clone.fetch("chrS", 0, 999)) == contigs["chrS"].upper()
    clone.close()


def _coverage(g):
    """Every base of every contig in exactly one interval of one split."""
    per_split = {s: g.intervals(s) for s in ("train", "val", "test")}
    for name in g.contigs:
        spans = sorted((a, b) for ivs in per_split.values() for c, a, b in ivs if c == name)
        assert spans[0][0] == 0 and spans[-1][1] == g.length(name)
        assert all(b1 == a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))
    return per_split


def _tokenize(tmp_path, spec, lengths):
    contigs = {name: "ACGT" * (n // 4) for name, n in lengths.items()}
    tokenize_fasta(write(tmp_path / "g.fa", contigs), tmp_path / "tok", splits=spec, log=False)
    return Genome(tmp_path / "tok")


def test_split_by_contig_names(tmp_path):
    g = _tokenize(tmp_path, SplitSpec(val_contigs=["b"], test_contigs=["c", "d"]),
                  {"a": 400, "b": 400, "c": 400, "d": 800})
    assert [g.split(c) for c in g.contigs] == ["train", "val", "test", "test"]
    iv = _coverage(g)
    assert iv == {"train": [("a", 0, 400)], "val": [("b", 0, 400)], "test": [("c", 0, 400), ("d", 0, 800)]}


def test_split_by_bed(tmp_path):
    bed = tmp_path / "held.bed"
    bed.write_text("track name=held\nb\t100\t200\tval\na\t300\t400\ttest\nb\t0\t50\ttest\nb\t200\t260\tval\n")
    g = _tokenize(tmp_path, SplitSpec(holdout_bed=str(bed), test_contigs=["c"]), {"a": 400, "b": 400, "c": 400})
    assert [g.split(c) for c in g.contigs] == ["mixed", "mixed", "test"]
    iv = _coverage(g)
    assert iv["val"] == [("b", 100, 260)]
    assert iv["test"] == [("a", 300, 400), ("b", 0, 50), ("c", 0, 400)]
    assert g.regions("b") == [(0, 50, "test"), (50, 100, "train"), (100, 260, "val"), (260, 400, "train")]


def test_split_by_fraction(tmp_path):
    g = _tokenize(tmp_path, SplitSpec(val_fraction=0.1, test_fraction=0.25, val_contigs=["c"]),
                  {"a": 1000, "b": 400, "c": 400})
    assert [g.split(c) for c in g.contigs] == ["mixed", "mixed", "val"]
    iv = _coverage(g)
    assert iv["train"] == [("a", 0, 650), ("b", 0, 260)]
    assert iv["val"] == [("a", 650, 750), ("b", 260, 300), ("c", 0, 400)]
    assert iv["test"] == [("a", 750, 1000), ("b", 300, 400)]


def test_no_split_rule_means_all_train(tmp_path):
    g = _tokenize(tmp_path, None, {"a": 40, "b": 80})
    assert g.intervals("train") == [("a", 0, 40), ("b", 0, 80)]
    assert g.intervals("val") == g.intervals("test") == []


def test_missing_manifest_or_shard(tmp_path, genome):
    g, _ = genome
    with pytest.raises(GenomambaError, match="no such directory"):
        Genome(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenomambaError, match="no manifest.json"):
        Genome(tmp_path / "empty")
    copy = tmp_path / "copy"
    shutil.copytree(g.root, copy)
    assert Genome(copy / "manifest.json").contigs == g.contigs  # the manifest's path works too
    (copy / "shard-00000.h5").unlink()
    with pytest.raises(GenomambaError, match="shard shard-00000.h5 listed in manifest.json is missing"):
        Genome(copy)
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(GenomambaError, match="cannot read the manifest"):
        Genome(copy)


def test_verify_finds_a_mismatch(tmp_path, genome, capsys):
    g, _ = genome
    copy = tmp_path / "copy"
    shutil.copytree(g.root, copy)
    assert all(Genome(copy).verify(c) for c in g.contigs)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["contigs"][1]["sha256"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert not Genome(copy).verify("chrS")
    assert main(["info", str(copy), "--verify"]) == 1
    captured = capsys.readouterr()
    assert "chrS" in captured.out and "MISMATCH" in captured.out
    assert "SHA-256 mismatch for contig(s) chrS" in captured.err
