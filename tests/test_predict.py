"""genomamba predict: finetune's own test-set predictions reproduced, the same answers from
BED, TSV and FASTA input, the length policy, and bad input."""

from __future__ import annotations

import gzip
import os
import re
import shutil

import numpy as np
import pytest
import torch

from genomamba.cli import main
from genomamba.data import decode
from genomamba.data.reference import open_reference
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENOME = os.path.join(ROOT, "resources", "NC_001133.9.fa.gz")
TASK = os.path.join(ROOT, "resources", "example_task")


def table(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        return [line.rstrip("\n").split("\t") for line in fh]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A probe fine-tuned on every 6th window of the example task (a few seconds)."""
    d = tmp_path_factory.mktemp("predict")
    shutil.copy(GENOME, d / "chrI.fa.gz")
    torch.manual_seed(0)
    GenoMambaForMaskedLM(GenoMambaConfig(d_model=16, n_layer=1, rc_mode="ph")).save_pretrained(d / "mlm")
    sets = {}
    for split in ("train", "val", "test"):
        lines = open(os.path.join(TASK, f"{split}.bed")).readlines()[::6]
        sets[split] = d / f"{split}.bed"
        sets[split].write_text("".join(lines))
    args = ["finetune", "--model", str(d / "mlm"), "--genome", str(d / "chrI.fa.gz"), "--out", str(d / "ft"),
            "mode=probe", "epochs=5", "--batch-size", "16"]
    for split, path in sets.items():
        args += [f"--{split}", str(path)]
    assert main(args) == 0
    return {"dir": d, "head": str(d / "ft"), "genome": str(d / "chrI.fa.gz"), "test": str(sets["test"])}


def predict(env, out, *source, extra=()):
    return main(["predict", "--head", env["head"], *source, "--out", str(out), *extra])


def test_reproduces_finetunes_test_predictions(env, tmp_path):
    out = tmp_path / "p.tsv"
    assert predict(env, out, "--bed", env["test"], "--genome", env["genome"], extra=["--batch-size", "5"]) == 0
    rows = table(out)
    written = table(os.path.join(env["head"], "predictions.tsv"))
    test = [r[1:] for r in written[1:] if r[0] == "test"]
    assert rows[0] == ["name", "label", "predicted", "p_cds", "p_intergenic"] == written[0][1:]
    assert len(rows) - 1 == len(test) > 20
    assert [r[:3] for r in rows[1:]] == [r[:3] for r in test]  # names, labels, predicted classes
    got = np.array([[float(v) for v in r[3:]] for r in rows[1:]])
    want = np.array([[float(v) for v in r[3:]] for r in test])
    assert np.allclose(got, want, atol=2e-6) and not np.allclose(got, got[0])


def test_tsv_and_fasta_give_the_same_answers(env, tmp_path):
    reference = open_reference(env["genome"])
    regions = [line.split("\t")[:3] for line in open(env["test"])][:6]
    seqs = [decode(reference.fetch(c, int(s), int(e))) for c, s, e in regions]
    (tmp_path / "s.tsv").write_text("".join(f"{s}\n" for s in seqs))
    (tmp_path / "s.fa").write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
    assert predict(env, tmp_path / "t.tsv.gz", "--tsv", str(tmp_path / "s.tsv")) == 0
    assert predict(env, tmp_path / "f.tsv", "--fasta", str(tmp_path / "s.fa")) == 0
    assert predict(env, tmp_path / "b.tsv", "--bed", env["test"], "--genome", env["genome"]) == 0
    t, f, b = table(tmp_path / "t.tsv.gz"), table(tmp_path / "f.tsv"), table(tmp_path / "b.tsv")
    assert t[0] == f[0] == ["name", "predicted", "p_cds", "p_intergenic"]  # no labels in these inputs
    assert [r[0] for r in f[1:]] == [f"r{i}" for i in range(6)] and t[1][0] == "line1"
    assert [r[1] for r in t[1:]] == [r[1] for r in f[1:]] == [r[2] for r in b[1:7]]
    probs = [np.array([[float(v) for v in r[-2:]] for r in rows[1:7]]) for rows in (t, f, b)]
    assert np.allclose(probs[0], probs[1], atol=2e-6) and np.allclose(probs[0], probs[2], atol=2e-6)


def test_length_policy(env, tmp_path, capsys):
    (tmp_path / "s.tsv").write_text("ACGT" * 32 + "\n" + "ACGT" * 300 + "\n")  # 128 bases, then 1200
    out = tmp_path / "p.tsv"
    assert predict(env, out, "--tsv", str(tmp_path / "s.tsv")) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(r"s\.tsv, record 'line2', line 2: 1200 bases, far from the 128 bases", err), err
    assert not out.exists()
    assert predict(env, out, "--tsv", str(tmp_path / "s.tsv"), extra=["length_ratio=0"]) == 0
    assert len(table(out)) == 3


@pytest.mark.parametrize("case, message", [
    ("mlm_head", r"no labels\.json; not a `genomamba finetune` model directory"),
    ("missing_head", r"no such directory"),
    ("unknown_contig", r"b\.bed, record 'chrZ:1-128', line 2: contig 'chrZ' not in"),
    ("past_end", r"b\.bed, record .*, line 1: end 230300 is beyond the end"),
    ("empty_fasta", r"e\.fa.*empty file"),
])
def test_bad_input_is_one_line_and_writes_nothing(env, tmp_path, capsys, case, message):
    head, source = env["head"], ["--bed", str(tmp_path / "b.bed"), "--genome", env["genome"]]
    (tmp_path / "b.bed").write_text("NC_001133.9\t0\t128\n")
    if case == "mlm_head":
        head = str(env["dir"] / "mlm")
    elif case == "missing_head":
        head = str(tmp_path / "nothing")
    elif case == "unknown_contig":
        (tmp_path / "b.bed").write_text("NC_001133.9\t0\t128\nchrZ\t0\t128\n")
    elif case == "past_end":
        (tmp_path / "b.bed").write_text("NC_001133.9\t230172\t230300\n")
    else:
        (tmp_path / "e.fa").write_text("\n")
        source = ["--fasta", str(tmp_path / "e.fa")]
    capsys.readouterr()
    out = tmp_path / "p.tsv"
    assert main(["predict", "--head", head, *source, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genomamba: error: ") and re.search(message, err[0]), err
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
