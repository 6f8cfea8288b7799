"""`genomamba score` over several processes (torchrun, 2 gloo processes on the CPU) gives the
bytes of a one-process run; --profile's table and summary.json's throughput."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pysam
import pytest

from genomamba.cli import main
from genomamba.distributed import Dist
from genomamba.score.parallel import part_path, span
from test_score import WINDOW, env, odd_cases, write_vcf  # noqa: F401  (env: the fixture)

STAGES = {"load", "check", "parse", "windows", "to_device", "forward", "from_device", "write", "plot", "other"}


def score_args(env, vcf, out, *extra):
    return ["score", "--model", env["ps"], "--reference", str(env["dir"] / "ref.fa"), "--vcf", vcf,
            "--out", out, "--window", str(WINDOW), "--device", "cpu", "--skip-ref-mismatch",
            "--chunk-size", "3", *extra]


def odd_vcf(env, tmp_path):
    rows = sorted((row for row, _ in odd_cases(env["seq"])), key=lambda r: (r[0] != "c1", r[1]))  # indexable
    return write_vcf(tmp_path / "in.vcf", rows, contigs=("c1", "chrZ"))


def test_shares_cover_the_records_in_order():
    for n in (0, 1, 5, 13):
        for world in (1, 2, 3):
            spans = [span(Dist(r, world), n) for r in range(world)]
            assert spans[0][0] == 0 and spans[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


@pytest.mark.parametrize("name", ["out.vcf.gz", "out.tsv"])
def test_two_processes_give_the_one_process_bytes(env, tmp_path, name):
    vcf = odd_vcf(env, tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    args = score_args(env, vcf, name)  # the same command line in both (the header records it)
    cwd = os.getcwd()
    os.chdir(one)
    try:
        assert main(args) == 0
    finally:
        os.chdir(cwd)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env_vars = {**os.environ, "PYTHONPATH": repo, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "genomamba", *args],
                          cwd=two, env=env_vars, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (two / name).read_bytes() == (one / name).read_bytes()
    if name.endswith(".vcf.gz"):
        assert (two / (name + ".tbi")).exists()
        with pysam.VariantFile(str(two / name)) as vf:
            assert sum(1 for _ in vf) == len(odd_cases(env["seq"]))
    assert not [p for p in os.listdir(two) if ".part-" in p or p.endswith(".tmp")]  # parts removed
    assert not os.path.exists(part_path(str(two / name), 0, 2))
    stem = name.split(".")[0]
    a, b = (json.loads((d / f"{stem}.summary.json").read_text()) for d in (one, two))
    for key in ("records", "alleles", "alleles_scored", "scored_by_score", "skipped_by_reason", "forward_rows",
                "score_stats", "provenance"):
        assert b[key] == a[key], key


def test_two_processes_stop_on_bad_input_and_leave_nothing(env, tmp_path):
    vcf = odd_vcf(env, tmp_path)
    args = [a for a in score_args(env, vcf, "out.vcf.gz") if a != "--skip-ref-mismatch"]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "genomamba", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    assert "genomamba: error: " in done.stderr and "do not match the reference" in done.stderr
    assert "Traceback" not in done.stderr.split("genomamba: error: ")[0]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(("out", ".out"))]


def test_profile_table_and_throughput(env, tmp_path, capsys):
    vcf = odd_vcf(env, tmp_path)
    out = tmp_path / "p.vcf.gz"
    assert main(score_args(env, vcf, str(out), "--profile")) == 0
    err = capsys.readouterr().err
    summary = json.loads((tmp_path / "p.summary.json").read_text())
    profile = summary["profile"]
    assert STAGES <= set(profile)
    assert sum(v["percent"] for v in profile.values()) == pytest.approx(100, abs=0.1)
    assert sum(v["seconds"] for v in profile.values()) == pytest.approx(summary["seconds"], rel=0.01, abs=0.01)
    assert "score: profile" in err and "forward" in err and "check" in err
    n = len(odd_cases(env["seq"]))
    assert summary["records"] == n
    assert summary["records_per_second"] == pytest.approx(n / summary["seconds"], rel=0.01)
    assert summary["alleles_scored_per_second"] == pytest.approx(summary["alleles_scored"] / summary["seconds"],
                                                                 rel=0.01)
    assert "records/s" in err and "scored ALTs/s" in err
    # without --profile: no table, no "profile" in summary.json
    assert main(score_args(env, vcf, str(tmp_path / "q.vcf.gz"))) == 0
    assert "score: profile" not in capsys.readouterr().err
    assert "profile" not in json.loads((tmp_path / "q.summary.json").read_text())
