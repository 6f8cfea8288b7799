"""A resumed pretraining run saves the same checkpoint as an uninterrupted one: not only the
weights and the optimiser but every RNG state. (The data loader drew its iterator's seed from
torch's global generator, so a run resumed once was one draw ahead, and its checkpoints' torch
RNG state differed from the uninterrupted run's: found by the kill tests, issue 24.)"""

from __future__ import annotations

import torch

from faults.cases import TINY_PRETRAIN, same_state
from genomamba.cli import main


def test_a_resumed_run_saves_the_uninterrupted_runs_checkpoint(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (tmp_path / "g.fa").write_text(">c1\n" + "ACGTTGCAAGGCTTAC" * 200 + "\n")
        assert main(["tokenize", "--fasta", tmp_path / "g.fa", "--out", tmp_path / "tok", "--val-fraction", "0.2",
                     "--quiet"]) == 0
        common = ["--data", tmp_path / "tok", "--resume", "auto", *TINY_PRETRAIN, "train.steps=6"]
        assert main(["pretrain", "--out", tmp_path / "straight", *common]) == 0
        assert main(["pretrain", "--out", tmp_path / "split", "--stop-at", "3", *common]) == 0
        assert main(["pretrain", "--out", tmp_path / "split", *common]) == 0
    finally:
        torch.set_num_threads(threads)
    a = (tmp_path / "straight" / "checkpoints" / "step-00000006.pt").read_bytes()
    b = (tmp_path / "split" / "checkpoints" / "step-00000006.pt").read_bytes()
    sa, sb = (torch.load(tmp_path / run / "checkpoints" / "step-00000006.pt", weights_only=True)
              for run in ("straight", "split"))
    assert torch.equal(sa["rng"][0]["torch"], sb["rng"][0]["torch"])
    assert same_state(a, b)
