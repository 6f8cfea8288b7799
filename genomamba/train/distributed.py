"""Pretraining's processes: rank r on ``cuda:LOCAL_RANK`` when there are GPUs, else the CPU
(``genomamba.distributed`` holds the process group and the collectives)."""

from __future__ import annotations

import torch

from genomamba.distributed import Dist, from_env, start, teardown

__all__ = ["Dist", "setup", "teardown"]


def setup() -> Dist:
    """Read torchrun's environment; start the process group when there are several processes."""
    env = from_env()
    device = torch.device("cuda", env.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    return start(env, device)
