"""``genomamba score`` over several processes: ``torchrun --nproc-per-node N -m genomamba score ...``.

Every process ("rank") reads the whole VCF (the checking pass too, so that all of them
agree on the record count and the header) and scores a contiguous share of the records:
rank r takes records ``[r * n // N, (r + 1) * n // N)``. It writes them, with the full
output header, to a part next to the output (``.OUT.part-R-of-N.bcf``, or ``.tsv`` for a
TSV output; BCF keeps the values exact). The ranks then exchange their summaries (and any
failure, so that none waits forever on one that stopped); rank 0 copies the parts in rank
order into the output through the ordinary writer, so the output, its header and its
index are those of a one-process run, and writes the merged summary. The parts are
removed at the end, also after a failure.

Processes: torchrun's ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; the group uses NCCL when the
ranks run on GPUs (rank r on ``cuda:LOCAL_RANK`` for ``--device auto`` or ``cuda``) and
gloo on the CPU.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from genomamba.errors import GenomambaError
from genomamba.score.output import output_kind


@dataclass
class Share:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def span(self, n_records: int) -> tuple[int, int]:
        """The records (0-based, end excluded) this rank scores."""
        return self.rank * n_records // self.world, (self.rank + 1) * n_records // self.world


def share_from_env() -> Share:
    """This process's share, from torchrun's environment (one process without it)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise GenomambaError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun)") from None
    if world < 1 or not 0 <= rank < world:
        raise GenomambaError(f"RANK {rank} is not within WORLD_SIZE {world}")
    return Share(rank, world, local_rank)


def device_name(share: Share, name: str) -> str:
    """The device this rank uses: ``cuda:LOCAL_RANK`` for ``auto``/``cuda`` when there are GPUs
    and several processes; ``name`` otherwise."""
    import torch

    if share.world > 1 and name in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{share.local_rank}"
    return name


def start(share: Share, device) -> None:
    """Join the process group (several processes only)."""
    import torch
    import torch.distributed as dist

    if share.world == 1 or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def gather(share: Share, obj) -> list:
    """Every rank's ``obj``, in rank order (on every rank)."""
    if share.world == 1:
        return [obj]
    import torch.distributed as dist

    out = [None] * share.world
    dist.all_gather_object(out, obj)
    return out


def barrier(share: Share) -> None:
    if share.world > 1:
        import torch.distributed as dist

        dist.barrier()


def end(share: Share) -> None:
    if share.world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def part_path(out: str, rank: int, world: int) -> str:
    """Where rank ``rank`` writes its part of ``out`` (a hidden file beside it)."""
    suffix = ".tsv" if output_kind(out).startswith("tsv") else ".bcf"
    directory, name = os.path.split(os.path.abspath(out))
    return os.path.join(directory, f".{name}.part-{rank}-of-{world}{suffix}")


def remove_parts(out: str, world: int) -> None:
    for rank in range(world):
        with contextlib.suppress(FileNotFoundError):
            os.remove(part_path(out, rank, world))


def raise_failures(failures: list) -> None:
    """Stop every rank with the first rank's failure, if any rank failed."""
    for rank, message in enumerate(failures):
        if message is not None:
            raise GenomambaError(message if rank == 0 else f"process {rank}: {message}")
