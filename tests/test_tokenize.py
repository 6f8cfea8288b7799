"""FASTA -> shards: exact round trip over layouts, compressions and block sizes."""

import gzip
import hashlib
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from Bio import bgzf

from genomamba.cli import main
from genomamba.data import Genome, shards
from genomamba.data.fasta import read_fasta
from genomamba.data.splits import SplitSpec
from genomamba.data.tokenize import tokenize_fasta

REPO = Path(__file__).resolve().parents[1]
IUPAC = "RYKMSWBDHV"


def random_sequence(rng, length):
    """Bases with N runs, scattered IUPAC codes and U, and lowercase runs."""
    seq = rng.choice(list("ACGT"), size=length)
    for _ in range(rng.integers(0, 4)):
        start = rng.integers(0, length)
        seq[start : start + rng.integers(1, 300)] = "N"
    for i in rng.choice(length, size=min(length, int(rng.integers(0, 5))), replace=False):
        seq[i] = rng.choice(list(IUPAC + "U"))
    lower = np.zeros(length, bool)
    for _ in range(rng.integers(0, 5)):
        start = rng.integers(0, length)
        lower[start : start + rng.integers(1, 700)] = True
    return "".join(c.lower() if low else c for c, low in zip(seq, lower))


def lines_of(rng, seq, layout):
    if layout == "one-line":
        return [seq]
    if layout == "irregular":
        cuts = np.sort(rng.choice(np.arange(1, len(seq)), size=min(len(seq) - 1, 8), replace=False))
        return [seq[a:b] for a, b in zip([0, *cuts], [*cuts, len(seq)])]
    return [seq[i : i + layout] for i in range(0, len(seq), layout)]


def make_records(seed=0, n=8, max_len=5000):
    rng = np.random.default_rng(seed)
    layouts = [60, 1, 7, 61, "one-line", "irregular", 80, 60]
    return [(f"chr{i} some description", random_sequence(rng, int(rng.integers(1, max_len))),
             layouts[i % len(layouts)]) for i in range(n)]


def write_fasta(path, records, *, eol="\n", blank_lines=True, compress=None, seed=1):
    rng = np.random.default_rng(seed)
    parts = []
    for header, seq, layout in records:
        parts.append(f">{header}{eol}")
        for line in lines_of(rng, seq, layout):
            parts.append(line + eol)
        if blank_lines:
            parts.append(eol)
    data = "".join(parts).encode()
    if compress == "gzip":
        data = gzip.compress(data)
    if compress == "bgzip":
        with bgzf.BgzfWriter(str(path), "wb") as f:
            f.write(data)
    else:
        Path(path).write_bytes(data)
    return path


def expected(seq):
    upper = seq.upper().replace("U", "T")
    return re.sub(f"[{IUPAC}]", "N", upper)


def check_genome(out, records):
    g = Genome(out)
    assert g.contigs == [h.split()[0] for h, _, _ in records]
    for header, seq, _ in records:
        name, want = header.split()[0], expected(seq)
        assert g.length(name) == len(seq)
        assert g.sequence(name) == want
        assert g.softmask(name, 0, len(seq)).tolist() == [c.islower() for c in seq]
        runs = [[m.start(), m.end()] for m in re.finditer("N+", want)]
        assert g.n_runs(name).tolist() == runs
        info = g.info(name)
        assert info["sha256"] == hashlib.sha256(want.encode()).hexdigest()
        assert info["n_ambiguous"] == sum(c.upper() in IUPAC for c in seq)
        assert info["n_uracil"] == seq.upper().count("U")
        assert info["n_count"] == want.count("N")
        assert info["softmasked"] == sum(c.islower() for c in seq)
    return g


@pytest.fixture
def small_flush(monkeypatch):
    """Write in many small, chunk-aligned pieces (as a large contig would)."""
    monkeypatch.setattr(shards, "_FLUSH_BASES", 2048)


@pytest.mark.parametrize("compress", [None, "gzip", "bgzip"])
@pytest.mark.parametrize("block_size", [64, 1 << 20])
def test_round_trip_is_exact(tmp_path, compress, block_size, small_flush):
    records = make_records()
    fasta = write_fasta(tmp_path / "g.fa", records, compress=compress)
    tokenize_fasta(fasta, tmp_path / "out", chunk_size=1024, block_size=block_size, log=False)
    g = check_genome(tmp_path / "out", records)
    with h5py.File(tmp_path / "out" / "shard-00000.h5") as f:
        group = f[g.info("chr3")["group"]]
        assert group.attrs["name"] == "chr3"
        assert group.attrs["length"] == g.length("chr3")
        assert group.attrs["source"] == str(fasta)
        assert group.attrs["sha256"] == g.info("chr3")["sha256"]
        assert group.attrs["description"] == "chr3 some description"
        assert group["tokens"].chunks == (1024,)


def test_reader_agrees_with_biopython_on_the_example_genome(tmp_path):
    from Bio import SeqIO

    fasta = REPO / "resources" / "NC_001133.9.fa.gz"
    with gzip.open(fasta, "rt") as f:
        (rec,) = SeqIO.parse(f, "fasta")
    seq = str(rec.seq)
    (got,) = read_fasta(fasta)
    assert got.name == rec.id == "NC_001133.9"
    assert got.softmask.tolist() == [c.islower() for c in seq]
    tokenize_fasta(fasta, tmp_path / "out", log=False)
    assert Genome(tmp_path / "out").sequence("NC_001133.9") == seq.upper()


def test_crlf_gives_the_same_genome_as_lf(tmp_path):
    records = make_records(seed=2)
    tokenize_fasta(write_fasta(tmp_path / "lf.fa", records), tmp_path / "lf", log=False)
    tokenize_fasta(write_fasta(tmp_path / "crlf.fa", records, eol="\r\n"), tmp_path / "crlf", log=False)
    lf, crlf = Genome(tmp_path / "lf"), Genome(tmp_path / "crlf")
    assert lf.manifest["contigs"] == crlf.manifest["contigs"]
    for name in lf.contigs:
        assert (lf.fetch(name, 0, lf.length(name)) == crlf.fetch(name, 0, crlf.length(name))).all()
        assert (lf.softmask(name, 0, lf.length(name)) == crlf.softmask(name, 0, crlf.length(name))).all()


def test_rerun_replaces_output_with_identical_bytes(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", make_records(seed=3))
    out = tmp_path / "out"
    tokenize_fasta(fasta, out, shard_size=5000, log=False)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(first) > 2  # several shards + manifest
    tokenize_fasta(fasta, out, shard_size=5000, log=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "out"]  # no temporary left


def test_shards_hold_whole_contigs_up_to_the_shard_size(tmp_path):
    records = make_records(seed=4, n=12)
    fasta = write_fasta(tmp_path / "g.fa", records)
    manifest = tokenize_fasta(fasta, tmp_path / "out", shard_size=6000, log=False)
    lengths = {h.split()[0]: len(s) for h, s, _ in records}
    assert len(manifest["shards"]) > 1
    seen = []
    for shard in manifest["shards"]:
        with h5py.File(tmp_path / "out" / shard["file"]) as f:
            names = [f["contigs"][k].attrs["name"] for k in f["contigs"]]
        assert sorted(names) == sorted(shard["contigs"])
        assert shard["bases"] == sum(lengths[n] for n in names)
        assert shard["bases"] - lengths[shard["contigs"][-1]] < 6000  # full before its last contig
        seen += shard["contigs"]
    assert seen == list(lengths)
    check_genome(tmp_path / "out", records)


@pytest.mark.parametrize("compression", ["bitshuffle", "scaleoffset", "lzf", "gzip", "none"])
def test_every_compression_round_trips(tmp_path, compression):
    records = make_records(seed=5, n=3)
    tokenize_fasta(write_fasta(tmp_path / "g.fa", records), tmp_path / "out", compression=compression,
                   chunk_size=1024, log=False)
    check_genome(tmp_path / "out", records)
    assert Genome(tmp_path / "out").manifest["compression"] == compression


def test_a_fresh_fai_is_accepted(tmp_path):
    import pysam

    records = make_records(seed=6, n=4)
    for i, (h, s, layout) in enumerate(records):  # samtools needs regular lines
        records[i] = (h, s, 60 if layout in ("irregular", "one-line") else layout)
    plain = write_fasta(tmp_path / "g.fa", records, blank_lines=False)
    packed = write_fasta(tmp_path / "g.fa.gz", records, blank_lines=False, compress="bgzip")
    for fasta in (plain, packed):
        pysam.faidx(str(fasta))
        assert Path(str(fasta) + ".fai").exists()
        tokenize_fasta(fasta, tmp_path / f"out-{fasta.name}", log=False)


def test_cli_tokenize_then_info(tmp_path, capsys):
    records = [("chrA", "ACGTRYacgtuN" * 10, 60), ("chr1", "ACGT" * 50, 7), ("chr2", "acgtn" * 40, "one-line")]
    fasta = write_fasta(tmp_path / "g.fa", records)
    out = tmp_path / "tok"
    assert main(["tokenize", "--fasta", str(fasta), "--out", str(out), "--val-contigs", "chr1",
                 "--test-contigs", "chr2", "--chunk-size", "2Ki"]) == 0
    err = capsys.readouterr().err
    assert "tokenized 3 contig(s)" in err
    assert "20 IUPAC ambiguity codes turned into N (chrA: 20)" in err
    assert "10 U turned into T (chrA: 10)" in err
    assert Genome(out).manifest["chunk_size"] == 2048

    assert main(["info", str(out), "--verify"]) == 0
    text = capsys.readouterr().out
    for name, split in (("chrA", "train"), ("chr1", "val"), ("chr2", "test")):
        row = next(line for line in text.splitlines() if line.startswith(name + " "))
        assert row.split()[-2:] == [split, "ok"]

    assert main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in summary["contigs"]] == ["chrA", "chr1", "chr2"]
    assert [c["n_ambiguous"] for c in summary["contigs"]] == [20, 0, 0]
    assert [c["n_count"] for c in summary["contigs"]] == [30, 0, 40]


@pytest.mark.parametrize("command", ["tokenize", "info"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: genomamba {command}" in capsys.readouterr().out


def test_interrupted_run_leaves_nothing_and_keeps_the_old_output(tmp_path, monkeypatch):
    fasta = write_fasta(tmp_path / "g.fa", make_records(seed=8))
    out = tmp_path / "out"
    tokenize_fasta(fasta, out, log=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    calls = []
    real_finish = shards.ShardWriter.finish

    def interrupted(self, attrs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_finish(self, attrs)

    monkeypatch.setattr(shards.ShardWriter, "finish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tokenize_fasta(fasta, out, log=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "out"]

    with pytest.raises(KeyboardInterrupt):
        calls.clear()
        tokenize_fasta(fasta, tmp_path / "new", log=False)
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "out"]


def test_splits_are_recorded_for_every_base(tmp_path):
    records = make_records(seed=9, n=5)
    fasta = write_fasta(tmp_path / "g.fa", records)
    m = tokenize_fasta(fasta, tmp_path / "out", splits=SplitSpec(test_contigs=["chr0"], val_fraction=0.1,
                                                                  test_fraction=0.2), log=False)
    assert m["totals"]["train"] + m["totals"]["val"] + m["totals"]["test"] == m["totals"]["bases"]
    assert m["split_rule"]["test_contigs"] == ["chr0"]
    by = {c["name"]: c["split"] for c in m["contigs"]}
    assert by["chr0"] == "test" and by["chr1"] == "mixed"
