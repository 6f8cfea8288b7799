"""Gather the benchmark runs (results/benchmarks/MODEL/TASK/metrics.json) into one table:
summary.tsv (one row per task, model or baseline), summary.md (per task, the models beside
the k-mer and one-hot baselines and the majority class) and summary.png (test AUROC bars).

Run by the `benchmarks_summary` rule (Snakemake `script:`), or by hand:

    python workflow/scripts/benchmarks_summary.py OUT_DIR results/benchmarks/*/*/metrics.json
"""

import json
import os
import sys

COLUMNS = ("task", "method", "split", "n", "accuracy", "mcc", "auroc", "majority_baseline_accuracy")


def rows(paths):
    """Per run: the model's held-out metrics, then each baseline's once per task."""
    out, seen = [], set()
    for path in sorted(paths):
        model, task = path.split(os.sep)[-3], path.split(os.sep)[-2]
        m = json.load(open(path))
        split = "test" if "test" in m else "val"
        setting = m["settings"]
        out.append({"task": task, "method": f"{model} ({setting['mode']}, {setting['pooling']})", "split": split,
                    **{k: m[split][k] for k in COLUMNS[3:]}})
        for name, b in (m.get("baselines") or {}).items():
            if (task, name) in seen:
                continue
            seen.add((task, name))
            if "skipped" in b:
                out.append({"task": task, "method": f"{name} baseline (skipped: {b['skipped']})", "split": split})
            else:
                out.append({"task": task, "method": f"{name} baseline ({b['features']})", "split": split,
                            **{k: b[split][k] for k in COLUMNS[3:]}})
    return out


def fmt(value):
    if value is None or value == "":
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write(out_tsv, out_md, out_png, table):
    from genomamba.files import pyplot, save_figure, write_text

    write_text(out_tsv, "\t".join(COLUMNS) + "\n" + "".join(
        "\t".join(fmt(r.get(c)) for c in COLUMNS) + "\n" for r in table))
    lines = ["# Benchmarks", "", "Held-out metrics (test split; val where a task has none) of each model and of "
             "the baselines fitted on the same splits.", "",
             "| task | method | n | accuracy | MCC | AUROC | majority class |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['task']} | {r['method']} | {fmt(r.get('n'))} | {fmt(r.get('accuracy'))} | {fmt(r.get('mcc'))} | "
              f"{fmt(r.get('auroc'))} | {fmt(r.get('majority_baseline_accuracy'))} |" for r in table]
    write_text(out_md, "\n".join(lines) + "\n")
    plt = pyplot()
    tasks = list(dict.fromkeys(r["task"] for r in table))
    methods = list(dict.fromkeys(r["method"].split(" (")[0] for r in table))
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(tasks) * max(1, len(methods)) / 3, 3.5))
    width = 0.8 / max(1, len(methods))
    for j, method in enumerate(methods):
        values = [next((r.get("auroc") or 0 for r in table if r["task"] == t and r["method"].split(" (")[0] == method),
                       0) for t in tasks]
        ax.bar([i + j * width for i in range(len(tasks))], values, width, label=method)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks([i + width * (len(methods) - 1) / 2 for i in range(len(tasks))], tasks)
    ax.set_ylabel("held-out AUROC")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, out_png)


if __name__ == "__main__":
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        write(sm.output.tsv, sm.output.md, sm.output.plot, rows(list(sm.input)))
    else:
        out = sys.argv[1]
        write(os.path.join(out, "summary.tsv"), os.path.join(out, "summary.md"), os.path.join(out, "summary.png"),
              rows(sys.argv[2:]))
