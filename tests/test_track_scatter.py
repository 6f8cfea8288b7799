"""A scattered track entry (parts: N): workflow/scripts/track_parts.py deals the track's parts into
N BEDs, `genomamba track` runs on each, and the gather writes the bigWig and all-ALT TSV of one
run (same values, same bytes); the workflow plans N track_part jobs and one gather."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genomamba.cli import main
from genomamba.errors import GenomambaError
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

REPO = Path(__file__).resolve().parents[1]
WINDOW = 31
PART_SIZE = 40


def load_script():
    spec = importlib.util.spec_from_file_location("track_parts", REPO / "workflow" / "scripts" / "track_parts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("track_scatter")
    rng = np.random.default_rng(5)
    c1 = "".join(rng.choice(list("ACGT"), size=230))
    c1 = c1[:90] + "NNNNN" + c1[95:]
    c2 = "".join(rng.choice(list("ACGT"), size=70))
    (d / "ref.fa").write_text(f">c1\n{c1}\n>c2\n{c2}\n>c3\nACGTACGTAC\n")
    (d / "regions.bed").write_text("c2\t5\t70\nc1\t0\t100\nc1\t100\t150\nc1\t170\t230\n")  # touching: merged
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(GenoMambaConfig(d_model=8, n_layer=1, rc_mode="ps"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(d / "model")
    return d


from workflow_helpers import dry_run  # noqa: E402
from model_helpers import one_thread  # noqa: E402,F401  (autouse: one torch thread per module)


def track(env, out, regions, alts):
    return main(["track", "--model", str(env / "model"), "--reference", str(env / "ref.fa"), "--regions", str(regions),
                 "--out", str(out), "--all-alts", str(alts), "--window", str(WINDOW), "--device", "cpu",
                 f"part_size={PART_SIZE}"])


def test_three_groups_gather_to_the_one_run_outputs(env, tmp_path):
    tp = load_script()
    one = tmp_path / "one"
    one.mkdir()
    assert track(env, one / "track.bw", env / "regions.bed", one / "all_alts.tsv.gz") == 0

    tp.split(str(env / "ref.fa"), str(env / "regions.bed"), PART_SIZE, 3, str(tmp_path / "beds"))
    beds = [(tmp_path / "beds" / f"part-{k}-of-3.bed").read_text().splitlines() for k in (1, 2, 3)]
    assert all(beds)
    lines = [line.split("\t") for bed in beds for line in bed]  # the track's parts, in reference order
    assert [(c, int(s), int(e)) for c, s, e in lines] == [
        ("c1", 0, 40), ("c1", 40, 80), ("c1", 80, 120), ("c1", 120, 150), ("c1", 170, 210), ("c1", 210, 230),
        ("c2", 5, 45), ("c2", 45, 70)]
    groups = []
    for k in (1, 2, 3):
        g = tmp_path / f"part-{k}-of-3"
        g.mkdir()
        assert track(env, g / "track.bw", tmp_path / "beds" / f"part-{k}-of-3.bed", g / "all_alts.tsv.gz") == 0
        groups.append(str(g))
    out = tmp_path / "gathered"
    out.mkdir()
    tp.gather(str(env / "ref.fa"), str(env / "regions.bed"), PART_SIZE, str(out / "track.bw"),
              str(out / "all_alts.tsv.gz"), groups)

    import pyBigWig

    with pyBigWig.open(str(one / "track.bw")) as a, pyBigWig.open(str(out / "track.bw")) as b:
        assert list(a.chroms().items()) == list(b.chroms().items())
        for contig, length in a.chroms().items():
            va, vb = np.array(a.values(contig, 0, length)), np.array(b.values(contig, 0, length))
            assert np.array_equal(np.isnan(va), np.isnan(vb))
            assert np.array_equal(va[~np.isnan(va)], vb[~np.isnan(vb)])
        assert np.isfinite(a.values("c1", 0, 90)).all() and np.isnan(a.values("c1", 90, 95)).all()
    assert (out / "track.bw").read_bytes() == (one / "track.bw").read_bytes()
    assert (out / "all_alts.tsv.gz").read_bytes() == (one / "all_alts.tsv.gz").read_bytes()
    assert (out / "all_alts.tsv.gz.tbi").read_bytes() == (one / "all_alts.tsv.gz.tbi").read_bytes()

    # a missing group: a one-line error naming it, nothing written
    shutil.rmtree(groups[1])
    with pytest.raises(GenomambaError, match=r"part-2-of-3/track.bw is missing"):
        tp.gather(str(env / "ref.fa"), str(env / "regions.bed"), PART_SIZE, str(tmp_path / "x.bw"),
                  str(tmp_path / "x.tsv.gz"), groups)
    assert not list(tmp_path.glob("x.*")) and not list(tmp_path.glob(".*"))


def test_more_parts_than_track_parts_is_an_error(env, tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "workflow" / "scripts" / "track_parts.py"), "split",
                           str(env / "ref.fa"), str(env / "regions.bed"), "1000", "4", str(tmp_path / "beds")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == ("track_parts: error: parts: 4, but the regions make only 3 track part(s) of at most 1000 "
                           "bases (part_size); ask for fewer parts or a smaller part_size\n")
    assert not (tmp_path / "beds").exists()


def test_dry_run_scatters_a_track_entry_into_n_part_jobs_and_one_gather(tmp_path):
    out = dry_run(tmp_path, {"track": {
        "whole": {"genome": "example"},
        "scattered": {"genome": "example", "parts": 4, "all_alts": True, "gpus": 1, "part_size": 10000}}},
        ["results/track/whole", "results/track/scattered"])
    counts = dict(re.findall(r"^(track\w*)\s+(\d+)$", out, re.M))
    assert counts == {"track": "1", "track_split": "1", "track_part": "4", "track_gather": "1"}
    for k in (1, 2, 3, 4):
        assert re.search(rf"track --model \S+ --reference results/tokens/example --device cuda part_size=10000 "
                         rf"--regions results/track/scattered.parts/regions-4/part-{k}-of-4.bed "
                         rf"--out results/track/scattered.parts/part-{k}-of-4/track.bw "
                         rf"--all-alts results/track/scattered.parts/part-{k}-of-4/all_alts.tsv.gz ", out)
    # the unscattered entry: one job, the whole genome (no --regions), no --all-alts
    assert re.search(r"track --model \S+ --reference results/tokens/example --device cpu\s+"
                     r"--out results/track/whole/track.bw\s+>", out)
    blocks = re.findall(r"^rule (track\w*):\n((?:    .*\n)+)", out, re.M)
    parts = [re.search(r"resources: (.*)", b).group(1) for rule, b in blocks if rule == "track_part"]
    assert len(parts) == 4 and all("gpu=1" in r for r in parts)
