"""Fine-tuning baselines (genomamba.train.baselines): features checked by brute force, and
`finetune --baselines kmer,onehot` reporting them beside the model on the same splits."""

import itertools
import json

import numpy as np
import pytest
import torch

from genomamba.cli import main
from genomamba.data import encode
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM
from genomamba.train.baselines import canonical_index, kmer_features, onehot_features

COMP = {"A": "T", "C": "G", "G": "C", "T": "A"}


def rc(s):
    return "".join(COMP[b] for b in reversed(s))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_canonical_index_joins_each_kmer_with_its_reverse_complement(k):
    column = canonical_index(k)
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=k)]
    code = {m: i for i, m in enumerate(kmers)}
    for m in kmers:
        assert column[code[m]] == column[code[rc(m)]]
    palindromes = sum(m == rc(m) for m in kmers)
    assert column.max() + 1 == (4**k + palindromes) // 2


def test_kmer_and_onehot_features_by_brute_force():
    seqs = ["ACGTTGCAAN" + "ACG", "GGGCC"]
    feats = kmer_features([encode(s) for s in seqs], 2)
    column = canonical_index(2)
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=2)]
    for row, s in zip(feats, seqs):
        windows = [s[i : i + 2] for i in range(len(s) - 1) if "N" not in s[i : i + 2]]
        expected = np.zeros(column.max() + 1)
        for w in windows:
            expected[column[kmers.index(w)]] += 1 / len(windows)
        assert np.allclose(row, expected)
    oh = onehot_features([encode("ACNT"), encode("TTTT")]).reshape(2, 4, 4)
    assert oh[0].tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    assert oh[1, :, 3].tolist() == [1, 1, 1, 1]


def site_task(path, n, rng, length=30, variable=False):
    """Class `site`: TATA at the centre; class `none`: TATA elsewhere. Same composition,
    so only the position tells them apart: one-hot wins, k-mer frequencies cannot."""
    lines = []
    for i in range(n):
        size = length + (int(rng.integers(0, 3)) if variable else 0)
        seq = list(rng.choice(list("ACGT"), size=size))
        at = size // 2 - 2 if i % 2 else int(rng.choice([2, size - 6]))
        seq[at : at + 4] = "TATA"
        lines.append("".join(seq) + ("\tsite\n" if i % 2 else "\tnone\n"))
    path.write_text("".join(lines))
    return str(path)


def test_finetune_reports_baselines_beside_the_model(tmp_path, capsys):
    torch.manual_seed(0)
    model = tmp_path / "mlm"
    GenoMambaForMaskedLM(GenoMambaConfig(d_model=8, n_layer=1)).save_pretrained(model)
    rng = np.random.default_rng(0)
    sets = {k: site_task(tmp_path / f"{k}.tsv", n, rng) for k, n in (("train", 200), ("val", 60), ("test", 60))}
    args = ["finetune", "--model", str(model), "--train", sets["train"], "--val", sets["val"], "--test", sets["test"],
            "--out", str(tmp_path / "out"), "--mode", "probe", "--epochs", "5", "--baselines", "kmer,onehot"]
    assert main(args) == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    onehot, kmer = m["baselines"]["onehot"], m["baselines"]["kmer"]
    assert onehot["features"] == "one-hot of 30 positions" and onehot["n_features"] == 120
    assert onehot["test"]["accuracy"] > 0.9 and onehot["test"]["n"] == 60
    assert kmer["k"] in (2, 4, 6) and kmer["test"]["accuracy"] < onehot["test"]["accuracy"]
    assert set(onehot) >= {"train", "val", "test", "l2"}
    assert "baseline onehot (one-hot of 30 positions): test accuracy" in capsys.readouterr().err

    # variable length: the one-hot baseline is skipped, saying why
    sets["train"] = site_task(tmp_path / "train2.tsv", 60, rng, variable=True)
    args[args.index("--train") + 1] = sets["train"]
    assert main(args) == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert "different lengths" in m["baselines"]["onehot"]["skipped"] and "test" in m["baselines"]["kmer"]
    assert "baseline onehot skipped: sequences of" in capsys.readouterr().err

    assert main(args[:-2] + ["--baselines", "kmer,gc"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "baselines takes a subset of kmer, onehot" in err
