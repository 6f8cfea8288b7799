"""Classifier poolings (genomamba.model.pooling): mean_center and attention, RC invariance,
save/load, and the probe refusing a pooling with weights."""

import numpy as np
import pytest
import torch

from genomamba.cli import main
from genomamba.data import reverse_complement
from genomamba.model import GenoMambaConfig, GenoMambaForSequenceClassification
from genomamba.model.pooling import Pooling


def test_mean_center_and_attention_pool_what_they_say():
    hidden = torch.randn(2, 5, 3)
    ids = torch.tensor([[0, 1, 2, 3, 0], [0, 1, 2, 5, 5]])  # second row: 2 [PAD]s
    mean = torch.stack([hidden[0].mean(0), hidden[1, :3].mean(0)])
    out = Pooling("mean_center", 3)(hidden, ids)
    torch.testing.assert_close(out, torch.cat([mean, hidden[:, 2]], -1))
    attention = Pooling("attention", 3)
    torch.testing.assert_close(attention(hidden, ids), mean)  # a zero query: the mean
    with torch.no_grad():
        attention.query.copy_(torch.tensor([50.0, 0, 0]))
    top = hidden[1, :3, 0].argmax()
    torch.testing.assert_close(attention(hidden, ids)[1], hidden[1, top], atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("pooling", ["mean_center", "attention"])
def test_new_poolings_are_rc_invariant_and_survive_save_and_load(tmp_path, pooling):
    torch.manual_seed(0)
    clf = GenoMambaForSequenceClassification(GenoMambaConfig(d_model=8, n_layer=1), num_labels=3,
                                             pooling=pooling).eval()
    if pooling == "attention":
        with torch.no_grad():
            clf.pooler.query.normal_()
    ids = torch.randint(0, 4, (2, 11))
    rc = torch.as_tensor(np.stack([reverse_complement(r.numpy()) for r in ids])).long()
    with torch.no_grad():
        torch.testing.assert_close(clf(ids), clf(rc), atol=1e-5, rtol=1e-5)
        clf.save_pretrained(tmp_path / "m")
        back = GenoMambaForSequenceClassification.from_pretrained(tmp_path / "m").eval()
        assert back.pooling == pooling and back.score.in_features == (16 if pooling == "mean_center" else 8)
        torch.testing.assert_close(back(ids), clf(ids))


def test_probe_with_attention_pooling_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "t.tsv").write_text("ACGT\ta\nTTGA\tb\n")
    t = str(tmp_path / "t.tsv")
    assert main(["finetune", "--model", str(tmp_path), "--train", t, "--val", t, "--out", str(tmp_path / "o"),
                 "mode=probe", "pooling=attention"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pooling attention has weights to learn: use mode=full" in err
    assert not (tmp_path / "o").exists()
