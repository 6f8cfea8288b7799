"""Training checkpoints: writing (atomically), loading with clear errors, pruning.

A checkpoint ``RUN_DIR/checkpoints/step-00001000.pt`` holds the model and optimiser
state, the scheduler, the step, the sampler position (next micro-batch index), the
resolved config and every process's RNG states (Python, NumPy, torch CPU and CUDA).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import torch

from genomamba.errors import GenomambaError
from genomamba.files import atomic_path

PATTERN = re.compile(r"^step-(\d+)\.pt$")
FORMAT = 1


def rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := PATTERN.match(p.name))]
    return sorted(found)


def save_checkpoint(run_dir: Path, state: dict, keep: int) -> Path:
    """Write ``state`` as ``step-N.pt`` atomically, then drop all but the newest ``keep``."""
    path = checkpoint_dir(run_dir) / f"step-{state['step']:08d}.pt"
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    for _, old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GenomambaError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated zip, bad pickle, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenomambaError(f"{path}: checkpoint is truncated or corrupt ({reason})") from None
    required = {"format", "step", "model", "optimizer", "scheduler", "sampler", "config", "rng"}
    if not isinstance(state, dict) or required - set(state):
        missing = sorted(required - set(state)) if isinstance(state, dict) else sorted(required)
        raise GenomambaError(f"{path}: not a genomamba pretraining checkpoint (missing {', '.join(missing)})")
    return state


def find_resume(run_dir: Path, resume: str) -> Path | None:
    """Checkpoint for ``--resume``: a path, 'latest' (must exist) or 'auto' (None when absent)."""
    if resume not in ("latest", "auto"):
        return Path(resume)
    found = list_checkpoints(run_dir)
    if found:
        return found[-1][1]
    if resume == "latest":
        raise GenomambaError(f"{checkpoint_dir(run_dir)}: no checkpoint to resume from")
    return None
