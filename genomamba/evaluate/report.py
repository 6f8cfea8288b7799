"""What ``genomamba evaluate`` writes: ``metrics.json``, ``report.md`` and ``roc.png``
(ROC and precision-recall curves of the score and of the k-mer baseline)."""

from __future__ import annotations

import os

from genomamba.evaluate.metrics import pr_points, roc_points
from genomamba.files import pyplot, save_figure, staged_outputs, write_json, write_text


def _fmt(value, ci=None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.3f}"
    if ci:
        text += f" ({ci[0]:.3f}-{ci[1]:.3f})"
    return text


def markdown(m: dict) -> str:
    lines = [
        f"# Evaluation of {m['score_field']} in {m['scored']}", "",
        f"Positive: {', '.join(m['positive'])} (n={m['n_positive']}); "
        f"negative: {', '.join(m['negative'])} (n={m['n_negative']}); {m['orientation']}.",
        f"Labels: {m['labels']}. CIs: 95%, {m['bootstrap']['replicates']} stratified bootstrap replicates "
        f"(seed {m['bootstrap']['seed']}).", "",
        "| score | variants | AUROC (95% CI) | AUPRC (95% CI) |",
        "| --- | --- | --- | --- |",
        f"| {m['score_field']} | {m['n_positive'] + m['n_negative']} | {_fmt(m['auroc'], m['auroc_ci'])} | "
        f"{_fmt(m['auprc'], m['auprc_ci'])} |",
    ]
    k = m.get("kmer_baseline")
    if k:
        lines.append(f"| k-mer baseline ({2 * k['flank']}-base context) | {k['n_positive'] + k['n_negative']} | "
                     f"{_fmt(k['auroc'], k['auroc_ci'])} | {_fmt(k['auprc'], k['auprc_ci'])} |")
    lines.append(f"| random | | 0.500 | {_fmt(m['auprc_random'])} |")
    strat = m.get("stratified")
    if strat:
        lines += ["", "AUROC within each substitution type (strand-collapsed):", "",
                  "| type | positive | negative | AUROC" + (" | k-mer AUROC |" if k else " |"),
                  "| --- | --- | --- | ---" + (" | --- |" if k else " |")]
        for name, row in strat["types"].items():
            extra = f" | {_fmt(k['stratified']['types'][name]['auroc'])} |" if k else " |"
            lines.append(f"| {name} | {row['n_positive']} | {row['n_negative']} | {_fmt(row['auroc'])}{extra}")
        extra = f" | {_fmt(k['stratified']['pair_weighted_auroc'])} |" if k else " |"
        lines.append(f"| pair-weighted mean | | | {_fmt(strat['pair_weighted_auroc'])}{extra}")
    lines += ["", f"Labelled variants without a score: {m['n_missing']}; scored variants without a label: "
              f"{m['n_unlabelled']}."]
    if m["other_labels"]:
        lines.append("Labels in neither class: " + ", ".join(f"{k} ({v})" for k, v in m["other_labels"].items()) + ".")
    if k and k["n_missing"]:
        lines.append(f"The k-mer baseline scores {k['n_positive'] + k['n_negative']} of them "
                     f"({k['n_missing']} are not A/C/G/T SNVs with a full context).")
    return "\n".join(lines) + "\n"


def plot(path, curves: dict, prevalence: float) -> None:
    """``curves``: {name: (oriented scores, is_positive)}."""
    plt = pyplot()
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(9, 4))
    for name, (scores, is_positive) in curves.items():
        fpr, tpr = roc_points(scores, is_positive)
        roc.plot(fpr, tpr, label=name, drawstyle="default")
        recall, precision = pr_points(scores, is_positive)
        pr.step(recall, precision, where="post", label=name)
    roc.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="random")
    pr.axhline(prevalence, color="grey", lw=0.8, ls="--", label="random")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    roc.legend(fontsize=7, loc="lower right")
    pr.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save_figure(fig, path)


def write_outputs(out, metrics: dict, curves: dict) -> None:
    """The three files appear together (metrics.json last), or, if one cannot be written (a
    full disk), none does and an earlier evaluation in ``out`` stays as it was."""
    os.makedirs(out, exist_ok=True)
    with staged_outputs() as stage:
        plot(stage.file(os.path.join(out, "roc.png")), curves, metrics["auprc_random"])
        write_text(stage.file(os.path.join(out, "report.md")), markdown(metrics))
        write_json(stage.file(os.path.join(out, "metrics.json")), metrics)
