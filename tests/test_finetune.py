"""Fine-tuning: task readers, metrics, probe and full training, outputs, RC invariance."""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from genomamba.cli import main
from genomamba.data import decode, reverse_complement
from genomamba.errors import GenomambaError
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM, GenoMambaForSequenceClassification
from genomamba.train import finetune_metrics as fm
from genomamba.train.finetune import FinetuneSettings, run_finetune
from genomamba.model.labels import read_labels
from genomamba.train.tasks import class_names, label_ids, load_examples

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENOME = os.path.join(ROOT, "resources", "NC_001133.9.fa.gz")
TASK = os.path.join(ROOT, "resources", "example_task")


def tiny_model(path, rc_mode="ps", d_model=16, n_layer=1, seed=0):
    torch.manual_seed(seed)
    GenoMambaForMaskedLM(GenoMambaConfig(d_model=d_model, n_layer=n_layer, rc_mode=rc_mode)).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def genome_copy(tmp_path_factory):
    """The bundled genome copied out of the repo (pyfaidx writes its index next to it)."""
    path = tmp_path_factory.mktemp("genome") / "chrI.fa.gz"
    shutil.copy(GENOME, path)
    return str(path)


# --- readers --------------------------------------------------------------------------


def test_tsv_with_and_without_header(tmp_path):
    plain = tmp_path / "a.tsv"
    plain.write_text("ACGT\tpos\nacgn\tneg\n")
    ex = load_examples(plain)
    assert [decode(s) for s in ex.sequences] == ["ACGT", "ACGN"]
    assert ex.labels == ["pos", "neg"]

    headed = tmp_path / "b.tsv.gz"
    with gzip.open(headed, "wt") as fh:
        fh.write("id\tlabel\tsequence\nx1\t1\tGGCC\nx2\t0\tTTAA\n")
    ex = load_examples(headed)
    assert ex.names == ["x1", "x2"] and ex.labels == ["1", "0"]
    assert decode(ex.sequences[1]) == "TTAA"


def test_tsv_bad_nucleotide_names_file_and_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("ACGT\t1\nACXT\t0\n")
    with pytest.raises(GenomambaError, match=r"bad\.tsv.*line 2.*'X'"):
        load_examples(path)


def test_bed_reads_genome_and_reverse_complements_minus_strand(tmp_path, genome_copy):
    from genomamba.data.reference import open_reference

    ref = open_reference(genome_copy)
    bed = tmp_path / "t.bed"
    bed.write_text("track name=x\nNC_001133.9\t100\t120\tcds\nNC_001133.9\t100\t120\tother\t0\t-\n")
    ex = load_examples(bed, ref)
    forward = ref.fetch("NC_001133.9", 100, 120)
    assert np.array_equal(ex.sequences[0], forward)
    assert np.array_equal(ex.sequences[1], reverse_complement(forward))


@pytest.mark.parametrize(
    "line, message",
    [
        ("NC_001133.9\t230000\t230300\tx", r"line 1.*beyond the end"),
        ("chrZ\t1\t10\tx", r"line 1.*'chrZ' not in"),
        ("NC_001133.9\t10\tfive\tx", r"line 1.*not integers"),
        ("NC_001133.9\t10\t20", r"line 1.*chrom, start, end, label"),
    ],
)
def test_bed_errors(tmp_path, genome_copy, line, message):
    bed = tmp_path / "bad.bed"
    bed.write_text(line + "\n")
    with pytest.raises(GenomambaError, match=message):
        load_examples(bed, genome_copy)


def test_bed_needs_genome(tmp_path):
    bed = tmp_path / "x.bed"
    bed.write_text("c\t0\t5\tx\n")
    with pytest.raises(GenomambaError, match="needs the genome"):
        load_examples(bed)


def test_fasta_folder_layouts(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "promoter.fa").write_text(">p1\nACGT\nAC\n>p2\nGG\n")
    with gzip.open(files / "background.fasta.gz", "wt") as fh:
        fh.write(">b1\nTTTT\n")
    ex = load_examples(files)
    assert sorted(zip(ex.names, ex.labels)) == [("b1", "background"), ("p1", "promoter"), ("p2", "promoter")]
    assert decode(ex.sequences[ex.names.index("p1")]) == "ACGTAC"

    dirs = tmp_path / "gb" / "train"  # Genomic Benchmarks: class folders, one sequence per file
    for label, seqs in {"positive": ["ACGTA", "CCCCC"], "negative": ["TTTTA"]}.items():
        (dirs / label).mkdir(parents=True)
        for i, seq in enumerate(seqs):
            (dirs / label / f"{i}.txt").write_text(seq + "\n")
    ex = load_examples(dirs)
    assert sorted(ex.labels) == ["negative", "positive", "positive"]
    assert sorted(decode(s) for s in ex.sequences) == ["ACGTA", "CCCCC", "TTTTA"]


def test_unknown_validation_label_is_an_error(tmp_path):
    train, val = tmp_path / "train.tsv", tmp_path / "val.tsv"
    train.write_text("AC\ta\nGT\tb\n")
    val.write_text("AC\ta\nGT\tc\n")
    classes = class_names(load_examples(train).labels)
    with pytest.raises(GenomambaError, match=r"val\.tsv.*'c'"):
        label_ids(load_examples(val), classes, val)
    assert class_names(["10", "9", "1"]) == ["1", "9", "10"]


# --- metrics --------------------------------------------------------------------------


def brute_auroc(labels, scores):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_metrics_against_definitions():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60), 1)  # ties on purpose
    probs = np.stack([1 - scores, scores], axis=1)
    assert fm.auroc(labels, probs) == pytest.approx(brute_auroc(labels, scores))

    preds = probs.argmax(1)
    tp = int(((preds == 1) & (labels == 1)).sum())
    tn = int(((preds == 0) & (labels == 0)).sum())
    fp = int(((preds == 1) & (labels == 0)).sum())
    fn = int(((preds == 0) & (labels == 1)).sum())
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert fm.mcc(labels, preds, 2) == pytest.approx(mcc)
    f1_pos = 2 * tp / (2 * tp + fp + fn)
    f1_neg = 2 * tn / (2 * tn + fn + fp)
    assert fm.macro_f1(labels, preds, 2) == pytest.approx((f1_pos + f1_neg) / 2)

    three = np.array([0, 1, 2, 2, 1, 0])
    onehot = np.eye(3)[three]
    m = fm.classification_metrics(three, onehot)
    assert m["accuracy"] == 1 and m["mcc"] == pytest.approx(1) and m["auroc"] == 1 and m["macro_f1"] == 1
    wrong = np.eye(3)[(three + 1) % 3]
    m = fm.classification_metrics(three, wrong)
    assert m["accuracy"] == 0 and m["mcc"] < 0
    assert m["auroc"] == pytest.approx(np.mean([brute_auroc(three == j, wrong[:, j]) for j in range(3)]))


# --- training -------------------------------------------------------------------------


def test_probe_on_example_task_beats_majority_baseline(tmp_path, genome_copy):
    """Held-out (test split) windows of the bundled CDS-vs-intergenic task; a third of each
    split keeps it quick. The backbone is untrained: the probe learns from its features."""
    subset = {}
    for split in ("train", "val", "test"):
        lines = open(os.path.join(TASK, f"{split}.bed")).readlines()[::3]
        subset[split] = tmp_path / f"{split}.bed"
        subset[split].write_text("".join(lines))
    model = tiny_model(tmp_path / "mlm")
    out = tmp_path / "out"
    metrics = run_finetune(FinetuneSettings(
        model=model, train=str(subset["train"]), val=str(subset["val"]), test=str(subset["test"]),
        out=str(out), genome=genome_copy, mode="probe", batch_size=64, seed=0,
    ))
    test = metrics["test"]
    assert test["n"] > 50
    assert test["accuracy"] > test["majority_baseline_accuracy"] + 0.1
    assert test["mcc"] > 0.2 and test["auroc"] > 0.6

    # outputs: metrics JSON, predictions for every held-out window, a loadable model
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"]["accuracy"] == pytest.approx(test["accuracy"])
    rows = (out / "predictions.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:4] == ["split", "name", "label", "predicted"]
    test_rows = [r.split("\t") for r in rows[1:] if r.startswith("test\t")]
    assert len(test_rows) == test["n"]
    accuracy = np.mean([r[2] == r[3] for r in test_rows])
    assert accuracy == pytest.approx(test["accuracy"])
    assert (out / "scores.png").stat().st_size > 1000

    # the saved classifier predicts what predictions.tsv says (folded standardisation)
    labels = read_labels(out)
    clf = GenoMambaForSequenceClassification.from_pretrained(labels["model_dir"]).eval()
    ex = load_examples(subset["test"], genome_copy)
    ids = torch.as_tensor(np.stack(ex.sequences[:8]).astype(np.int64))
    with torch.no_grad():
        probs = torch.softmax(clf(ids), -1).numpy()
    written = {r[1]: [float(v) for v in r[4:]] for r in test_rows}
    assert np.allclose(probs, np.array([written[name] for name in ex.names[:8]]), atol=1e-4)


def synthetic_tsv(path, n, rng, length=24):
    """GC-rich (class gc) vs AT-rich (class at) sequences."""
    lines = []
    for i in range(n):
        label = "gc" if i % 2 else "at"
        p = [0.1, 0.4, 0.4, 0.1] if label == "gc" else [0.4, 0.1, 0.1, 0.4]
        lines.append("".join(rng.choice(list("ACGT"), size=length, p=p)) + f"\t{label}\n")
    path.write_text("".join(lines))
    return str(path)


def test_full_finetune_cli_seeded_rc_invariant_and_early_stopping(tmp_path):
    rng = np.random.default_rng(0)
    train = synthetic_tsv(tmp_path / "train.tsv", 48, rng)
    val = synthetic_tsv(tmp_path / "val.tsv", 16, rng)
    model = tiny_model(tmp_path / "mlm", rc_mode="none", d_model=8)
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        args = ["finetune", "--model", model, "--train", train, "--val", val, "--test", val, "--out", str(out),
                "--mode", "full", "--epochs", "4", "--patience", "1", "--batch-size", "16", "--lr", "0.01",
                "--seed", "3"]
        assert main(args) == 0
        outs.append(json.loads((out / "metrics.json").read_text()))
    a, b = outs
    # seeded: the same run twice (up to float rounding, which can depend on memory alignment)
    assert a["test"] == pytest.approx(b["test"], rel=1e-5)
    assert [h["train_loss"] for h in a["history"]] == pytest.approx([h["train_loss"] for h in b["history"]], rel=1e-5)
    assert a["best_epoch"] == b["best_epoch"] and a["epochs_run"] == b["epochs_run"]
    # early stopping: the kept epoch is the best validation epoch, and training stopped
    # `patience` epochs after it (or at the epoch limit)
    vals = [h["val"]["mcc"] for h in a["history"]]
    assert a["best_epoch"] == 1 + int(np.argmax(vals))
    assert a["epochs_run"] == min(4, a["best_epoch"] + 1)
    assert a["val"]["mcc"] == pytest.approx(max(vals))

    # a model without RC parameter sharing still predicts the same for both strands
    clf = GenoMambaForSequenceClassification.from_pretrained(tmp_path / "a" / "model").eval()
    ex = load_examples(val)
    ids = torch.as_tensor(np.stack(ex.sequences).astype(np.int64))
    rc = torch.as_tensor(np.stack([reverse_complement(s) for s in ex.sequences]).astype(np.int64))
    with torch.no_grad():
        assert torch.allclose(clf(ids), clf(rc), atol=1e-5)
        assert not torch.allclose(clf(ids, rc_average=False), clf(rc, rc_average=False), atol=1e-5)


def test_multiclass_and_bad_inputs(tmp_path):
    rng = np.random.default_rng(5)
    rows = []
    for i in range(30):
        label = ["a", "b", "c"][i % 3]
        rows.append("".join(rng.choice(list("ACGT"), size=12)) + f"\t{label}\n")
    (tmp_path / "tr.tsv").write_text("".join(rows))
    model = tiny_model(tmp_path / "mlm", d_model=8)
    m = run_finetune(FinetuneSettings(model=model, train=str(tmp_path / "tr.tsv"), val=str(tmp_path / "tr.tsv"),
                                      out=str(tmp_path / "o"), mode="probe", epochs=3))
    assert m["task"]["classes"] == ["a", "b", "c"]
    header = (tmp_path / "o" / "predictions.tsv").read_text().splitlines()[0].split("\t")
    assert header[-3:] == ["p_a", "p_b", "p_c"]
    probs = np.loadtxt(tmp_path / "o" / "predictions.tsv", skiprows=1, usecols=(4, 5, 6))
    assert np.allclose(probs.sum(1), 1, atol=1e-5)

    (tmp_path / "one.tsv").write_text("ACGT\tx\nGGGG\tx\n")
    with pytest.raises(GenomambaError, match="at least two classes"):
        run_finetune(FinetuneSettings(model=model, train=str(tmp_path / "one.tsv"), val=str(tmp_path / "one.tsv"),
                                      out=str(tmp_path / "o2")))
    assert main(["finetune", "--model", model, "--train", str(tmp_path / "missing.tsv"),
                 "--val", str(tmp_path / "tr.tsv"), "--out", str(tmp_path / "o3")]) == 1
    assert not (tmp_path / "o3").exists()
