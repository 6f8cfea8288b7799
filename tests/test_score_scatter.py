"""`genomamba score --part K/N` in N jobs, then `genomamba score-gather`, gives the bytes (VCF,
header, index) and the summary counts of a one-process run; bad --part values and missing or
foreign parts stop with a one-line error and write nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pysam
import pytest
import torch

from genomamba.cli import main
from genomamba.score.scatter import command_without_part, parse_part, records_of
from test_score import WINDOW, env, odd_cases, write_vcf  # noqa: F401  (env: the fixture)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_VCF = str(REPO / "resources" / "example.vcf.gz")
EXAMPLE_FASTA = str(REPO / "resources" / "NC_001133.9.fa.gz")
COUNTS = ("records", "alleles", "alleles_scored", "scored_by_score", "skipped_by_reason", "forward_rows",
          "score_stats", "settings", "provenance")


from model_helpers import one_thread  # noqa: E402,F401  (autouse: one torch thread per module)


def score_args(env, vcf, out, reference=None, *extra, window=WINDOW, chunk=4):
    return ["score", "--model", env["ps"], "--reference", reference or str(env["dir"] / "ref.fa"), "--vcf", vcf,
            "--out", out, "--window", str(window), "--device", "cpu", "--skip-ref-mismatch",
            "--chunk-size", str(chunk), *extra]


def odd_vcf(env, tmp_path):
    rows = sorted((row for row, _ in odd_cases(env["seq"])), key=lambda r: (r[0] != "c1", r[1]))
    return write_vcf(tmp_path / "in.vcf", rows, contigs=("c1", "chrZ"))


def in_dir(path, argv):
    cwd = os.getcwd()
    os.chdir(path)
    try:
        return main(argv)
    finally:
        os.chdir(cwd)


def scattered_and_whole(tmp_path, args, n, name):
    """Run ``args`` once in one/ and as N parts + score-gather in parts/; both dirs."""
    one, parts = tmp_path / "one", tmp_path / "parts"
    one.mkdir()
    parts.mkdir()
    assert in_dir(one, args) == 0
    for k in range(1, n + 1):
        assert in_dir(parts, [*args, "--part", f"{k}/{n}"]) == 0
    stem = name.split(".")[0]
    suffix = ".tsv" if ".tsv" in name else ".bcf"
    files = [f"{stem}.part-{k}-of-{n}{suffix}" for k in (2, 3, 1, *range(4, n + 1))]  # any order
    assert in_dir(parts, ["score-gather", *files]) == 0
    return one, parts


@pytest.mark.parametrize("name", ["example.vcf.gz", "example.tsv"])
def test_three_parts_gather_to_the_one_process_bytes(env, tmp_path, name):
    args = score_args(env, EXAMPLE_VCF, name, EXAMPLE_FASTA)  # the same command line (the header records it)
    one, parts = scattered_and_whole(tmp_path, args, 3, name)
    assert (parts / name).read_bytes() == (one / name).read_bytes()
    if name.endswith(".vcf.gz"):
        assert (parts / f"{name}.tbi").read_bytes() == (one / f"{name}.tbi").read_bytes()
        with pysam.VariantFile(str(parts / name)) as vf:
            assert "##genomamba_command=genomamba score --model" in str(vf.header)
            assert "--part" not in str(vf.header)
            n = sum(1 for _ in vf)
        assert n == 66
        counts = []
        for k in (1, 2, 3):
            with pysam.VariantFile(str(parts / f"example.part-{k}-of-3.bcf")) as vf:
                counts.append(sum(1 for _ in vf))
        assert counts == [20, 24, 22]  # whole chunks of 4 records: of 17 chunks, [0, 5), [5, 11), [11, 17)
    a, b = (json.loads((d / "example.summary.json").read_text()) for d in (one, parts))
    for key in COUNTS:
        assert b[key] == a[key], key
    assert a["alleles_scored"] > 0 and (parts / "example.scores.png").stat().st_size > 0
    part2 = json.loads((parts / "example.part-2-of-3.summary.json").read_text())
    assert part2["part"]["index"] == 2 and part2["part"]["of"] == 3 and part2["part"]["records"] == [20, 44]
    assert part2["records"] == 24 and part2["provenance"] == a["provenance"]
    assert [p["records"] for p in b["gathered"]] == [[0, 20], [20, 44], [44, 66]]


def test_more_parts_than_records_and_every_skip_reason(env, tmp_path):
    vcf = odd_vcf(env, tmp_path)  # 13 records: SNVs, indels, symbolic, mismatches, unknown contig, ...
    args = score_args(env, vcf, "out.vcf.gz", chunk=1)  # one record a chunk: 13 parts of one record
    one, parts = scattered_and_whole(tmp_path, args, 20, "out.vcf.gz")
    assert (parts / "out.vcf.gz").read_bytes() == (one / "out.vcf.gz").read_bytes()
    a, b = (json.loads((d / "out.summary.json").read_text()) for d in (one, parts))
    for key in COUNTS:
        assert b[key] == a[key], key
    assert len(a["skipped_by_reason"]) >= 5
    empty = [k for k in range(1, 21) if json.loads((parts / f"out.part-{k}-of-20.summary.json").read_text())
             ["records"] == 0]
    assert len(empty) == 20 - len(odd_cases(env["seq"]))  # 7 empty parts, which gather as nothing


@pytest.mark.parametrize("value", ["0/3", "4/3", "3", "a/b", "1/0", "-1/3", "1/3/3"])
def test_bad_part_is_a_one_line_error(env, tmp_path, capsys, value):
    vcf = odd_vcf(env, tmp_path)
    assert in_dir(tmp_path, score_args(env, vcf, "out.vcf.gz", None, f"--part={value}")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"genomamba: error: --part {value}: give K/N, part K of N equal shares of the records, "
                   "with 1 <= K <= N (e.g. --part 2/3)"]
    assert sorted(os.listdir(tmp_path)) == ["in.vcf"]


def test_missing_or_foreign_part_stops_the_gather_and_writes_nothing(env, tmp_path, capsys):
    vcf = odd_vcf(env, tmp_path)
    args = score_args(env, vcf, "out.vcf.gz")
    for k in (1, 3):
        assert in_dir(tmp_path, [*args, "--part", f"{k}/3"]) == 0
    before = sorted(os.listdir(tmp_path))
    capsys.readouterr()

    def gather_fails(*parts):
        assert in_dir(tmp_path, ["score-gather", *parts]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("genomamba: error: "), err
        assert sorted(os.listdir(tmp_path)) == before  # nothing written, not even a temporary
        return err[0]

    assert "part 2 of 3 is missing: out.part-2-of-3.bcf" in gather_fails("out.part-1-of-3.bcf", "out.part-3-of-3.bcf")
    assert "part out.part-2-of-3.bcf: no such file" in gather_fails(
        "out.part-1-of-3.bcf", "out.part-2-of-3.bcf", "out.part-3-of-3.bcf")
    assert "are both part 1 of 3" in gather_fails("out.part-1-of-3.bcf", "out.part-1-of-3.bcf")
    # a part 2 of another command (another window): its header and settings differ
    assert in_dir(tmp_path, score_args(env, vcf, "out.vcf.gz", None, "--part", "2/3", window=21)) == 0
    before = sorted(os.listdir(tmp_path))
    capsys.readouterr()
    message = gather_fails("out.part-1-of-3.bcf", "out.part-2-of-3.bcf", "out.part-3-of-3.bcf")
    assert "out.part-2-of-3.bcf is not from the run of part out.part-1-of-3.bcf" in message
    assert "settings" in message and "VCF header" in message
    os.remove(tmp_path / "out.part-2-of-3.summary.json")
    before = sorted(os.listdir(tmp_path))
    assert "its summary out.part-2-of-3.summary.json is missing" in gather_fails(
        "out.part-1-of-3.bcf", "out.part-2-of-3.bcf", "out.part-3-of-3.bcf")


def test_part_values_and_the_recorded_command():
    assert parse_part("2/3") == (2, 3) and parse_part(" 3 / 3 ") == (3, 3)
    for n_records, chunk, n in ((66, 4, 3), (66, 256, 3), (13, 1, 20), (0, 8, 2), (1000, 7, 9)):
        spans = [records_of(k, n, n_records, chunk) for k in range(1, n + 1)]
        assert spans[0][0] == 0 and spans[-1][1] == n_records  # in order, covering every record once
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert all(a % chunk == 0 for a, _ in spans)  # each part starts on a chunk boundary
        sizes = [-(-(b - a) // chunk) for a, b in spans]  # chunks per part: nearly equal
        assert max(sizes) - min(sizes) <= 1
    assert [records_of(k, 3, 66, 256) for k in (1, 2, 3)] == [(0, 0), (0, 0), (0, 66)]  # one chunk
    assert command_without_part("genomamba score --vcf 'a b.vcf' --part 2/3 --out o.vcf.gz") == \
        "genomamba score --vcf 'a b.vcf' --out o.vcf.gz"
    assert command_without_part("genomamba score --part=1/2 --out o.vcf.gz --par 1/2") == \
        "genomamba score --out o.vcf.gz"
