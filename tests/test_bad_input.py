"""Bad input: a non-zero exit, one line naming file, record and line, and no output.

Decisions (README, "Tokens and shards"): CRLF is accepted; blank lines are ignored;
an empty record, a duplicate name, sequence before the first header, any byte that
is not a base (digits, *, -, ., spaces, tabs, a stray CR), truncated or corrupt gzip
and a stale .fai are errors.
"""

import gzip

import pytest

from genomamba.cli import main
from genomamba.data import Genome


def tokenize(tmp_path, fasta, *extra, out="out"):
    return main(["tokenize", "--fasta", str(fasta), "--out", str(tmp_path / out), "--quiet", *extra])


def single_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("genomamba: error: ")
    return lines[0]


def assert_no_output(tmp_path, *inputs):
    """Nothing but the inputs in the directory: no output, no temporary leftovers."""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(inputs)


CASES = {
    # name: (file content, record in the message, line in the message, words in the message)
    "empty file": (b"", None, None, "empty file"),
    "only blank lines": (b"\n\n  \n", None, None, "empty file"),
    "no header": (b"ACGT\nACGT\n", None, 1, "no '>' header"),
    "no header after blank lines": (b"\n\nACGT\n>a\nAC\n", None, 3, "no '>' header"),
    "header without name": (b">a\nAC\n> \nAC\n", None, 3, "no name"),
    "record with no sequence": (b">a\nACGT\n>b desc\n>c\nAC\n", "b", 3, "no sequence"),
    "last record with no sequence": (b">a\nACGT\n>b\n\n", "b", 3, "no sequence"),
    "duplicate name": (b">a x\nAC\n>b\nGG\n>a y\nGT\n", "a", 5, "duplicate contig name (first seen at line 1)"),
    "digit": (b">a\nACGT\nACGT\nAC1T\n", "a", 4, "'1' at column 3"),
    "star": (b">a\nACGT\n>b\nACGT\nACG*\n", "b", 5, "'*' at column 4"),
    "dash (gap)": (b">a\nAC-T\n", "a", 2, "'-' at column 3"),
    "dot": (b">a\nACGT\n.CGT\n", "a", 3, "'.' at column 1"),
    "space inside": (b">a\nACGT\nAC GT\nACGT\n", "a", 3, "' ' at column 3"),
    "trailing space": (b">a\nACGT \nACGT\n", "a", 2, "' ' at column 5"),
    "tab": (b">a\nAC\tGT\n", "a", 2, "byte 0x09"),
    "stray CR": (b">a\nAC\rGT\n", "a", 2, "byte 0x0d"),
    "'>' inside a line": (b">a\nACGT>b\nACGT\n", "a", 2, "'>' at column 5"),
    "bad byte deep in a regular record": (b">a\n" + b"ACGTACGTAC\n" * 500 + b"ACGTAXGTAC\n" + b"ACGT\n",
                                          "a", 502, "'X' at column 6"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_fasta_is_one_clear_error(tmp_path, capsys, case):
    content, record, line, words = CASES[case]
    fasta = tmp_path / "bad.fa"
    fasta.write_bytes(content)
    assert tokenize(tmp_path, fasta) == 1
    msg = single_error_line(capsys)
    assert str(fasta) in msg
    assert words in msg
    if record is not None:
        assert f"record {record!r}" in msg
    if line is not None:
        assert f"line {line}:" in msg
    assert_no_output(tmp_path, "bad.fa")


@pytest.mark.parametrize("case", ["digit", "record with no sequence", "duplicate name"])
def test_same_errors_from_gzip_and_tiny_buffers(tmp_path, capsys, case):
    content, record, line, words = CASES[case]
    fasta = tmp_path / "bad.fa.gz"
    fasta.write_bytes(gzip.compress(content))
    assert tokenize(tmp_path, fasta, "--buffer-size", "3") == 1
    msg = single_error_line(capsys)
    assert f"{fasta}, record {record!r}, line {line}: " in msg and words in msg
    assert_no_output(tmp_path, "bad.fa.gz")


def test_crlf_is_accepted(tmp_path, capsys):
    fasta = tmp_path / "crlf.fa"
    fasta.write_bytes(b">a desc\r\nACGTacgt\r\nNNRU\r\n>b\r\nGGCC\r\n")
    assert tokenize(tmp_path, fasta) == 0
    g = Genome(tmp_path / "out")
    assert g.contigs == ["a", "b"]
    assert g.sequence("a") == "ACGTACGTNNNT"
    assert g.softmask("a", 0, 12).tolist() == [False] * 4 + [True] * 4 + [False] * 4


def _records(n=30, width=60, bases=600):
    body = ("ACGT" * (bases // 4) + "\n").encode()
    lines = b"".join(body[i : i + width] + b"\n" for i in range(0, bases, width))
    return b"".join(b">chr%d\n" % i + lines for i in range(n))


def test_truncated_gzip(tmp_path, capsys):
    data = gzip.compress(_records())
    fasta = tmp_path / "cut.fa.gz"
    fasta.write_bytes(data[: len(data) // 2])
    assert tokenize(tmp_path, fasta) == 1
    msg = single_error_line(capsys)
    assert f"{fasta}, record 'chr" in msg and ", line " in msg
    assert "truncated or corrupt gzip" in msg
    assert_no_output(tmp_path, "cut.fa.gz")


def test_corrupt_gzip(tmp_path, capsys):
    data = bytearray(gzip.compress(_records()))
    data[-8] ^= 0xFF  # CRC
    fasta = tmp_path / "crc.fa.gz"
    fasta.write_bytes(bytes(data))
    assert tokenize(tmp_path, fasta) == 1
    msg = single_error_line(capsys)
    assert str(fasta) in msg and "truncated or corrupt gzip" in msg and "line " in msg
    assert_no_output(tmp_path, "crc.fa.gz")


@pytest.mark.parametrize("change", ["longer", "renamed", "removed", "rewrapped"])
def test_stale_fai(tmp_path, capsys, change):
    import pysam

    fasta = tmp_path / "g.fa"
    fasta.write_bytes(b">a\n" + b"ACGT" * 30 + b"\n>b\n" + b"ACGTACGTAC\n" * 5 + b">c\nGGGG\n")
    pysam.faidx(str(fasta))
    new = {
        "longer": b">a\n" + b"ACGT" * 31 + b"\n>b\n" + b"ACGTACGTAC\n" * 5 + b">c\nGGGG\n",
        "renamed": b">a\n" + b"ACGT" * 30 + b"\n>B\n" + b"ACGTACGTAC\n" * 5 + b">c\nGGGG\n",
        "removed": b">a\n" + b"ACGT" * 30 + b"\n>b\n" + b"ACGTACGTAC\n" * 5,
        "rewrapped": b">a\n" + b"ACGT" * 30 + b"\n>b\n" + b"ACGTACGTACACGTACGTAC\n" * 2 + b"ACGTACGTAC\n"
                     + b">c\nGGGG\n",
    }[change]
    fasta.write_bytes(new)
    assert tokenize(tmp_path, fasta) == 1
    msg = single_error_line(capsys)
    record, line = {"longer": ("a", 1), "renamed": ("b", 2), "removed": ("c", 3), "rewrapped": ("b", 2)}[change]
    assert f"{fasta}.fai, record {record!r}, line {line}: stale index" in msg
    assert "samtools faidx" in msg
    assert_no_output(tmp_path, "g.fa", "g.fa.fai")


def test_failed_rerun_keeps_the_previous_output(tmp_path, capsys):
    fasta = tmp_path / "g.fa"
    fasta.write_bytes(b">a\nACGT\n")
    assert tokenize(tmp_path, fasta) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    fasta.write_bytes(b">a\nACGT\n>a\nAC\n")
    assert tokenize(tmp_path, fasta) == 1
    assert "duplicate contig name" in single_error_line(capsys)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert_no_output(tmp_path, "g.fa", "out")


def test_missing_fasta(tmp_path, capsys):
    assert tokenize(tmp_path, tmp_path / "nope.fa") == 1
    assert f"{tmp_path / 'nope.fa'}: no such file" in single_error_line(capsys)
    assert_no_output(tmp_path)


def test_refuses_to_replace_a_foreign_directory(tmp_path, capsys):
    fasta = tmp_path / "g.fa"
    fasta.write_bytes(b">a\nACGT\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert tokenize(tmp_path, fasta) == 1
    assert "not tokenizer output" in single_error_line(capsys)
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


BED_CASES = {
    "too few columns": ("a\t0\t10\n", 1, "need 4 tab-separated columns"),
    "not integers": ("a\t0\t1x\tval\n", 1, "must be integers"),
    "empty interval": ("#c\na\t5\t5\tval\n", 2, "0 <= start < end"),
    "bad split name": ("a\t0\t10\ttrain\n", 1, "must be 'val' or 'test'"),
    "unknown contig": ("a\t0\t10\tval\nzz\t0\t10\ttest\n", 2, "not a contig of the genome"),
    "past the end": ("a\t0\t10\tval\nb\t0\t500\ttest\n", 2, "past the contig's length"),
    "overlap": ("a\t0\t10\tval\na\t5\t20\ttest\n", 2, "overlaps the interval on line 1"),
}


@pytest.mark.parametrize("case", BED_CASES)
def test_bad_holdout_bed(tmp_path, capsys, case):
    text, line, words = BED_CASES[case]
    fasta = tmp_path / "g.fa"
    fasta.write_bytes(b">a\n" + b"ACGT" * 50 + b"\n>b\n" + b"ACGT" * 50 + b"\n")
    bed = tmp_path / "h.bed"
    bed.write_text(text)
    assert tokenize(tmp_path, fasta, "--holdout-bed", str(bed)) == 1
    msg = single_error_line(capsys)
    assert f"{bed}, " in msg and f"line {line}:" in msg and words in msg
    assert_no_output(tmp_path, "g.fa", "h.bed")


def test_bad_split_options(tmp_path, capsys):
    fasta = tmp_path / "g.fa"
    fasta.write_bytes(b">a\nACGT\n>b\nACGT\n")
    assert tokenize(tmp_path, fasta, "--val-contigs", "zz") == 1
    assert "val_contigs names 'zz', which is not a contig" in single_error_line(capsys)
    assert tokenize(tmp_path, fasta, "--val-contigs", "a", "--test-contigs", "a") == 1
    assert "in both val_contigs and test_contigs" in single_error_line(capsys)
    bed = tmp_path / "h.bed"
    bed.write_text("a\t0\t2\tval\n")
    assert tokenize(tmp_path, fasta, "--holdout-bed", str(bed), "--val-fraction", "0.1") == 1
    assert "not both" in single_error_line(capsys)
    assert_no_output(tmp_path, "g.fa", "h.bed")
