"""Training checkpoints: writing (atomically), loading with clear errors, pruning.

A checkpoint ``RUN_DIR/checkpoints/step-00001000.pt`` holds the model and optimiser
state, the scheduler, the step, the sampler position (next micro-batch index), the
resolved config and every process's RNG states (Python, NumPy, torch CPU and CUDA).
``resume_state`` applies the ``--resume`` policy; ``restore`` loads a checkpoint back.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import torch

from genomamba.errors import GenomambaError
from genomamba.files import atomic_path
from genomamba.model.locate import load_weights_only
from genomamba.train.distributed import Dist

PATTERN = re.compile(r"^step-(\d+)\.pt$")
FORMAT = 1


def rng_state() -> dict:
    """Every generator's state as tensors and plain types, which ``torch.load(weights_only=True)``
    reads back (numpy's key array is stored as an int64 tensor)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, cached))
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
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: a full disk shows as OSError
        torch.save({"format": FORMAT, **state}, fh)
    for _, old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GenomambaError(f"{path}: checkpoint not found")
    state = load_weights_only(path, "checkpoint is truncated or corrupt, or holds more than tensors and plain types")
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


# ---- the resume policy ------------------------------------------------------------------

RUNTIME_KEYS = {"data": ("num_workers", "prefetch")}  # settings that don't change results


def same_run(old: dict, new: dict) -> bool:
    """Whether two configs describe the same run (up to data-loading settings)."""
    def strip(cfg):
        return {sec: {k: v for k, v in vals.items() if k not in RUNTIME_KEYS.get(sec, ())}
                for sec, vals in cfg.items()}
    return strip(old) == strip(new)


def check_compatible(state: dict, cfg: dict, path: Path) -> None:
    old = state["config"]["model"]
    for key in sorted(set(old) | set(cfg["model"])):
        if old.get(key) != cfg["model"].get(key):
            raise GenomambaError(
                f"{path}: model.{key} is {old.get(key)!r} in the checkpoint but "
                f"{cfg['model'].get(key)!r} now; resume with the same model settings"
            )


def resume_state(run_dir: Path, resume: str | None, cfg: dict, env: Dist) -> tuple[dict | None, Path | None]:
    """The checkpoint to continue from, as ``(state, path)``, or ``(None, None)`` to start afresh.

    'auto' starts afresh (deleting the old checkpoints) when the settings changed; a run
    dir with checkpoints is refused when not resuming.
    """
    run_dir = Path(run_dir)
    path = find_resume(run_dir, resume) if resume else None
    state = load_checkpoint(path) if path is not None else None
    if resume == "auto" and state is not None and not same_run(state["config"], cfg):
        if env.is_main:  # other settings now (e.g. a changed Snakemake config): start afresh
            print(f"pretrain: {run_dir}: settings changed since the checkpoints; starting afresh",
                  flush=True)
            for _, old in list_checkpoints(run_dir):
                old.unlink()
        env.barrier()
        state = path = None
    if path is None and list_checkpoints(run_dir):
        raise GenomambaError(
            f"{run_dir}: has checkpoints of an earlier run; pass --resume to continue it "
            "or choose another --out"
        )
    if state is not None:
        check_compatible(state, cfg, path)
    return state, path


# ---- training state ---------------------------------------------------------------------

def training_state(step: int, accum: int, model, optimizer, scheduler, cfg: dict, env: Dist) -> dict:
    """What a checkpoint holds (collective: gathers every rank's RNG states)."""
    rngs = env.gather_objects(rng_state())
    return {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "sampler": {"next_batch": step * accum},
        "config": cfg,
        "world_size": env.world,
        "rng": rngs,
    }


def restore(state: dict, path: Path, model, optimizer, scheduler, rank: int, accum: int) -> int:
    """Load a checkpoint's model, optimiser, scheduler and this rank's RNG states; returns its step."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    step = int(state["step"])
    rngs = state["rng"]
    set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0])
    if state["sampler"]["next_batch"] != step * accum:
        raise GenomambaError(f"{path}: sampler position does not match its step")
    return step
