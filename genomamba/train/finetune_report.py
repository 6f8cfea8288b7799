"""What ``genomamba finetune`` writes into its output directory.

- ``model/``: the fine-tuned classifier with its ``labels.json`` (``genomamba.model.labels``).
- ``metrics.json``: accuracy, MCC, macro-F1, AUROC (and the majority-class baseline) per
  split, the settings, the best epoch and the per-epoch validation history.
- ``predictions.tsv``: split, name, label, predicted, one probability column per class.
- ``scores.png``: the predicted probability of each class (of the second one for binary
  tasks) on the held-out split (test, else val), split by true class.
"""

from __future__ import annotations

import os

import numpy as np

from genomamba.files import atomic_path, pyplot, save_figure, staged_outputs, write_json
from genomamba.model.labels import save_classifier


def write_predictions(path, classes, results) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write("\t".join(["split", "name", "label", "predicted"] + [f"p_{c}" for c in classes]) + "\n")
        for split, (ex, labels, probs) in results.items():
            preds = probs.argmax(axis=1)
            for name, y, p, row in zip(ex.names, labels, preds, probs):
                fh.write("\t".join([split, name, classes[y], classes[p]] + [f"{v:.6g}" for v in row]) + "\n")


def plot_scores(path, classes, labels, probs, split) -> None:
    plt = pyplot()
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
    save_figure(fig, path)


def write_outputs(out, clf, classes, metrics, results) -> None:
    """model/, predictions.tsv, scores.png and metrics.json appear together (metrics.json
    last), or, if one cannot be written (a full disk), none does and an earlier run's stay."""
    os.makedirs(out, exist_ok=True)
    lengths = [len(s) for s in results["train"][0].sequences]
    with staged_outputs() as stage:
        save_classifier(stage.directory(os.path.join(out, "model")), clf, classes, int(np.median(lengths)),
                        metrics["settings"]["mode"])
        write_predictions(stage.file(os.path.join(out, "predictions.tsv")), classes, results)
        held_out = "test" if "test" in results else "val"
        _, labels, probs = results[held_out]
        plot_scores(stage.file(os.path.join(out, "scores.png")), classes, labels, probs, held_out)
        write_json(stage.file(os.path.join(out, "metrics.json")), metrics)
