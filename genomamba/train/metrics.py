"""Metrics as JSON lines (``RUN_DIR/metrics.jsonl``), the loss-curve PNG and ``summary.json``."""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from genomamba.files import pyplot, save_figure, write_json, write_text
from genomamba.train.distributed import Dist
from genomamba.train.masking import N_STATS, summarize


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


def peak_memory_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


class TrainMetrics:
    """A pretraining run's records: sums the masked-loss stats of each log interval into
    one train record, writes val records, and the final ``summary.json`` (rank 0 writes)."""

    def __init__(self, run_dir: Path, env: Dist, tokens_per_step: int):
        self.run_dir, self.env, self.tokens_per_step = Path(run_dir), env, tokens_per_step
        self.log = MetricsLog(self.run_dir / "metrics.jsonl", enabled=env.is_main)

    def open(self, resumed_at: int | None) -> None:
        """Start the file afresh, or drop the records after the step resumed from."""
        if resumed_at is None:
            self.log.reset()
        else:
            self.log.truncate_after(resumed_at)

    def start(self) -> None:
        """Start the clocks and the first interval."""
        self.interval = torch.zeros(N_STATS, dtype=torch.float64, device=self.env.device)
        self.interval_steps, self.tic, self.started = 0, time.perf_counter(), time.perf_counter()

    def add(self, step_stats: torch.Tensor) -> None:
        self.interval += step_stats
        self.interval_steps += 1

    def train_record(self, step: int, lr: float, grad_norm) -> dict:
        """Write the interval's train record (collective: sums over ranks) and start the next."""
        elapsed = time.perf_counter() - self.tic
        m = summarize(self.env.sum_(self.interval).cpu())
        record = {
            "split": "train", "step": step, **m,
            "lr": lr, "grad_norm": float(grad_norm),
            "tokens_per_s": self.tokens_per_step * self.interval_steps / max(elapsed, 1e-9),
            "peak_mem_gb": peak_memory_gb(self.env.device),
            "elapsed_s": time.perf_counter() - self.started,
        }
        self.log.write(record)
        self.interval.zero_()
        self.interval_steps, self.tic = 0, time.perf_counter()
        return record

    def val_record(self, step: int, val: dict) -> None:
        self.log.write({"split": "val", "step": step, **val})

    @contextlib.contextmanager
    def paused(self):
        """Time spent inside does not count in tokens/s."""
        paused = time.perf_counter()
        yield
        self.tic += time.perf_counter() - paused

    def write_summary(self, step: int, window: int, val: dict | None, steps_run: int) -> None:
        """``summary.json`` and ``loss_curve.png`` of a finished run (rank 0 writes)."""
        wall = time.perf_counter() - self.started
        if not self.log.enabled:
            return
        path, device = self.log.path, self.env.device
        records = read_metrics(path) if path.exists() else []
        train = [r for r in records if r.get("split") == "train"]
        speeds = [r["tokens_per_s"] for r in train[1:]] or [r["tokens_per_s"] for r in train]
        summary = {
            "steps": step,
            "world_size": self.env.world,
            "device": str(torch.cuda.get_device_name(device)) if device.type == "cuda" else "cpu",
            "window": window,
            "tokens_per_s": float(np.median(speeds)) if speeds else None,
            "peak_mem_gb": peak_memory_gb(device),
            "wall_s_this_run": wall,
            "steps_this_run": steps_run,
            "final_train": train[-1] if train else None,
            "final_val": val,
        }
        if records:
            plot_loss_curve(path, self.run_dir / "loss_curve.png")
        write_json(self.run_dir / "summary.json", summary)
