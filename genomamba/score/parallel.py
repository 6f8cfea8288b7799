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

Processes: ``genomamba.distributed`` (torchrun's environment, the process group: NCCL when
the ranks run on GPUs, rank r on ``cuda:LOCAL_RANK`` for ``--device auto`` or ``cuda``, gloo
on the CPU).
"""

from __future__ import annotations

import contextlib
import os

from genomamba.distributed import Dist
from genomamba.errors import GenomambaError
from genomamba.score.output import output_kind


def span(env: Dist, n_records: int) -> tuple[int, int]:
    """The records (0-based, end excluded) rank ``env.rank`` scores."""
    return env.rank * n_records // env.world, (env.rank + 1) * n_records // env.world


def device_name(env: Dist, name: str) -> str:
    """The device this rank uses: ``cuda:LOCAL_RANK`` for ``auto``/``cuda`` when there are GPUs
    and several processes; ``name`` otherwise."""
    import torch

    if env.world > 1 and name in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{env.local_rank}"
    return name


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
