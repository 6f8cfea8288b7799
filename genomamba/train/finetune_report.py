"""What ``genomamba finetune`` writes into its output directory.

- ``model/``: the fine-tuned classifier (``save_pretrained``) plus ``labels.json``:
  ``{"classes": [...], "sequence_length": N, "mode": ..., "pooling": ...}``
  (``sequence_length``: the median training length; ``genomamba score --head`` uses it as
  its window). Written to a temporary directory, then renamed into place.
- ``metrics.json``: accuracy, MCC, macro-F1, AUROC (and the majority-class baseline) per
  split, the settings, the best epoch and the per-epoch validation history.
- ``predictions.tsv``: split, name, label, predicted, one probability column per class.
- ``scores.png``: the predicted probability of each class (of the second one for binary
  tasks) on the held-out split (test, else val), split by true class.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

import numpy as np

from genomamba.score.atomic import atomic_path, write_json

LABELS_FILE = "labels.json"


def save_model(directory, clf, classes, sequence_length: int, mode: str) -> None:
    directory = os.fspath(directory)
    parent = os.path.dirname(os.path.abspath(directory))
    tmp = os.path.join(parent, f".{os.path.basename(directory)}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        clf.save_pretrained(tmp)
        labels = {"classes": list(classes), "sequence_length": int(sequence_length), "mode": mode,
                  "pooling": clf.pooling}
        with open(os.path.join(tmp, LABELS_FILE), "w") as fh:
            json.dump(labels, fh, indent=2)
        if os.path.isdir(directory):
            old = f"{tmp}.old"
            os.rename(directory, old)
            os.rename(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_labels(directory) -> dict:
    """``labels.json`` of a fine-tuned model directory (or of ``DIR/model``)."""
    from genomamba.errors import GenomambaError

    path = os.path.join(directory, LABELS_FILE)
    if not os.path.exists(path) and os.path.exists(os.path.join(directory, "model", LABELS_FILE)):
        path = os.path.join(directory, "model", LABELS_FILE)
    try:
        with open(path) as fh:
            labels = json.load(fh)
    except FileNotFoundError:
        raise GenomambaError(f"{directory}: no {LABELS_FILE}; not a `genomamba finetune` model directory") from None
    except json.JSONDecodeError as exc:
        raise GenomambaError(f"{path}: not valid JSON (line {exc.lineno})") from None
    if not isinstance(labels.get("classes"), list) or not labels["classes"]:
        raise GenomambaError(f"{path}: missing the list of classes")
    return {**labels, "model_dir": os.path.dirname(path)}


def write_predictions(path, classes, results) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write("\t".join(["split", "name", "label", "predicted"] + [f"p_{c}" for c in classes]) + "\n")
        for split, (ex, labels, probs) in results.items():
            preds = probs.argmax(axis=1)
            for name, y, p, row in zip(ex.names, labels, preds, probs):
                fh.write("\t".join([split, name, classes[y], classes[p]] + [f"{v:.6g}" for v in row]) + "\n")


def plot_scores(path, classes, labels, probs, split) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [1] if len(classes) == 2 else list(range(len(classes)))  # binary: p(second class) says it all
    fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.2), squeeze=False)
    bins = np.linspace(0, 1, 26)
    for j, ax in zip(shown, axes[0]):
        for t, name in enumerate(classes):
            values = probs[labels == t, j]
            if values.size:
                ax.hist(values, bins=bins, alpha=0.5, label=f"true {name} (n={values.size})")
        ax.set_xlabel(f"p({classes[j]})")
        ax.set_ylabel("examples")
        ax.legend(fontsize=7)
    fig.suptitle(f"predicted probabilities, {split} split")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_outputs(out, clf, classes, metrics, results) -> None:
    os.makedirs(out, exist_ok=True)
    lengths = [len(s) for s in results["train"][0].sequences]
    save_model(os.path.join(out, "model"), clf, classes, int(np.median(lengths)), metrics["settings"]["mode"])
    write_predictions(os.path.join(out, "predictions.tsv"), classes, results)
    held_out = "test" if "test" in results else "val"
    _, labels, probs = results[held_out]
    plot_scores(os.path.join(out, "scores.png"), classes, labels, probs, held_out)
    write_json(os.path.join(out, "metrics.json"), metrics)
