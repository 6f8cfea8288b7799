"""``genomamba score`` over several processes: ``torchrun --nproc-per-node N -m genomamba score ...``.

Every process ("rank") reads the whole VCF (the checking pass too, so that all of them
agree on the record count and the header) and scores a contiguous share of the records,
in whole chunks (``chunk_size`` records) so that its batches are a one-process run's: of
the ``c`` chunks, rank r takes chunks ``[r * c // N, (r + 1) * c // N)`` (``share``). It
writes them, with the full output header, to a part next to the output (``.OUT.part-R-of-N.bcf``, or ``.tsv`` for a
TSV output; BCF keeps the values exact). The ranks then exchange their summaries (and any
failure, so that none waits forever on one that stopped); rank 0 copies the parts in rank
order into the output through the ordinary writer, so the output, its header and its
index are those of a one-process run, and writes the merged summary. The parts are
removed at the end, also after a failure.

The same split and the same merge serve the workflow's scattered runs across jobs
(``genomamba score --part K/N`` and ``genomamba score-gather``: ``genomamba.score.scatter``):
``share`` gives both the records of a rank and those of a part, ``merge_parts`` joins both
kinds of part.

Processes: ``genomamba.distributed`` (torchrun's environment, the process group: NCCL when
the ranks run on GPUs, rank r on ``cuda:LOCAL_RANK`` for ``--device auto`` or ``cuda``, gloo
on the CPU).
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from genomamba.errors import GenomambaError
from genomamba.score.output import output_kind

if TYPE_CHECKING:  # torch is not needed to split or merge (score-gather runs without it)
    from genomamba.distributed import Dist


def share(index: int, count: int, start: int, stop: int, unit: int = 1) -> tuple[int, int]:
    """Share ``index`` (0-based) of ``count`` contiguous, nearly equal shares of the records
    ``[start, stop)``, in whole units of ``unit`` records from ``start`` (the last unit may be
    short): of the ``u = ceil(n / unit)`` units, share i takes units ``[i * u // count,
    (i + 1) * u // count)``. Some shares are empty when there are fewer units than shares.

    Scoring splits in whole chunks (``unit = chunk_size``): every chunk, and so every batch
    of forward passes, is then the very chunk a one-process run scores, and the scores are
    bit for bit the same although a kernel's rounding may depend on the batch it is in."""
    units = -(-(stop - start) // unit)
    lo, hi = index * units // count, (index + 1) * units // count
    return min(stop, start + lo * unit), min(stop, start + hi * unit)


def span(env: Dist, n_records: int, within: tuple[int, int] | None = None, unit: int = 1) -> tuple[int, int]:
    """The records (0-based, end excluded) rank ``env.rank`` scores: its share of all
    ``n_records``, or of the records ``within`` (a scattered part's, ``--part K/N``), in
    whole units of ``unit`` records (``share``)."""
    start, stop = within if within is not None else (0, n_records)
    return share(env.rank, env.world, start, stop, unit)


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


def merge_parts(out: str, parts: list[str], header, classes=None, provenance=None, csi: bool = False,
                pll: bool = False, index: bool = True) -> None:
    """Write ``out`` from ``parts`` (written by the same writer with the same header; VCF
    parts as BCF), copied in the order given, through the ordinary writer: the header and
    the index are those a one-process run writes. ``out`` appears only once complete."""
    from genomamba.score.output import open_writer

    writer = open_writer(out, header, classes, provenance, csi=csi, pll=pll, index=index)
    try:
        for path in parts:
            writer.copy_from(path)
    except BaseException:
        writer.abort()
        raise
    writer.close()


def raise_failures(failures: list) -> None:
    """Stop every rank with the first rank's failure, if any rank failed."""
    for rank, message in enumerate(failures):
        if message is not None:
            raise GenomambaError(message if rank == 0 else f"process {rank}: {message}")
