"""Training checkpoints cannot run code: they are read with torch.load(weights_only=True), and
what genomamba writes in them (RNG states included) is tensors and plain types only."""

import pathlib
import random

import numpy as np
import pytest
import torch

from genomamba.cli import main
from genomamba.errors import GenomambaError
from genomamba.train.checkpoint import load_checkpoint, rng_state, set_rng_state


class _Touch:
    """Unpickling this calls Path.touch(marker): code that runs if the loader allows it."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def crafted(tmp_path) -> tuple[pathlib.Path, pathlib.Path]:
    marker = tmp_path / "pwned"
    path = tmp_path / "step-00000010.pt"
    state = {"format": 1, "step": 10, "model": {}, "optimizer": {}, "scheduler": {}, "sampler": {},
             "config": {}, "rng": [_Touch(marker)]}
    torch.save(state, path)
    return path, marker


def test_the_crafted_file_would_run_code(tmp_path):
    """The fixture is real: a permissive load creates the marker."""
    path, marker = crafted(tmp_path)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_resume_refuses_a_checkpoint_that_needs_code(tmp_path):
    path, marker = crafted(tmp_path)
    with pytest.raises(GenomambaError, match="holds more than tensors and plain types"):
        load_checkpoint(path)
    assert not marker.exists()


def test_score_refuses_a_checkpoint_that_needs_code(tmp_path, capsys):
    path, marker = crafted(tmp_path)
    (tmp_path / "ref.fa").write_text(">c1\nACGTACGT\n")
    (tmp_path / "in.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    rc = main(["score", "--model", str(path), "--reference", str(tmp_path / "ref.fa"),
               "--vcf", str(tmp_path / "in.vcf"), "--out", str(tmp_path / "out.vcf.gz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and str(path) in err[0], err
    assert not marker.exists() and not (tmp_path / "out.vcf.gz").exists()


def test_rng_state_round_trips_through_a_weights_only_load(tmp_path):
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    np.random.normal()  # a cached Gaussian in numpy's state
    path = tmp_path / "rng.pt"
    torch.save({"rng": rng_state()}, path)
    want = (random.random(), np.random.normal(), np.random.randint(1 << 30), torch.rand(3))
    set_rng_state(torch.load(path, weights_only=True)["rng"])
    got = (random.random(), np.random.normal(), np.random.randint(1 << 30), torch.rand(3))
    assert got[:3] == want[:3] and torch.equal(got[3], want[3])
