"""Several processes under torchrun, for every step that runs on many: this process's place
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), joining the process group (NCCL on GPUs, gloo on
the CPU) and the few collectives the steps use. With one process nothing is started and the
collectives return at once."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from genomamba.errors import GenomambaError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device | None = None  # set by the step once it has chosen one

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """All-reduce (sum) in place; a no-op on one process."""
        if self.world > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def gather_objects(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def from_env() -> Dist:
    """This process's place, from torchrun's environment (one process without it)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise GenomambaError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun)") from None
    if world < 1 or not 0 <= rank < world:
        raise GenomambaError(f"RANK {rank} is not within WORLD_SIZE {world}")
    return Dist(rank, world, local_rank)


def start(env: Dist, device: torch.device) -> Dist:
    """Run this process on ``device`` and join the process group (several processes only)."""
    env.device = device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if env.world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return env


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
