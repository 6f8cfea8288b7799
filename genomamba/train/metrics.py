"""Metrics as JSON lines (``RUN_DIR/metrics.jsonl``) and the loss-curve PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path

from genomamba.files import pyplot, save_figure, write_text


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no nan/inf
    return value


class MetricsLog:
    """Appends one JSON object a line; ``truncate_after(step)`` drops lines of a run's
    future when it resumes from an earlier checkpoint."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        if not self.enabled or not self.path.exists():
            return
        kept = [ln for ln in read_metrics(self.path) if ln.get("step", 0) <= step]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        write_text(self.path, text)

    def reset(self) -> None:
        if self.enabled and self.path.exists():
            self.path.unlink()

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
            f.flush()


def read_metrics(path: Path) -> list[dict]:
    records = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
    return records


def plot_loss_curve(metrics_path: Path, png_path: Path) -> None:
    """Train and val masked-token loss and accuracy against step, as a PNG."""
    plt = pyplot()
    records = read_metrics(metrics_path)
    train = [r for r in records if r.get("split") == "train" and isinstance(r.get("loss"), float)]
    val = [r for r in records if r.get("split") == "val" and isinstance(r.get("loss"), float)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = (("loss", "masked-token cross-entropy (nats)"), ("acc", "masked-token accuracy"))
    for ax, (key, label) in zip(axes, panels):
        ax.plot([r["step"] for r in train], [r[key] for r in train], label="train", lw=1)
        if val:
            ax.plot([r["step"] for r in val], [r[key] for r in val], "o-", label="val")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, png_path)
