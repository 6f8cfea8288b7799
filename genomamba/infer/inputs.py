"""The sequences ``embed`` and ``predict`` run on, and how they are batched.

``open_inputs(bed=, genome=, fasta=, tsv=)`` checks that exactly one input is given and
returns an ``Inputs``: its ``regions()`` stream (``genomamba.data.regions``) and, for a BED,
the number of regions, counted in a first pass that checks every line against the genome
without reading bases (so an unknown contig or an interval past a contig end is reported
before any model work).

``length_batches`` groups the stream into batches of regions of one length, so no region
is ever padded and its result does not depend on which regions share its batch. A batch
is sent when it is full (``batch_size`` regions, fewer for long regions: about
``MAX_BATCH_BASES`` bases a batch) or when ``pending`` regions are waiting in all the
partial batches together, so memory stays bounded whatever the input's size or its mix
of lengths. Batches come out of input order: each region carries its index.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from genomamba.errors import GenomambaError

MAX_BATCH_BASES = 1 << 20  # bases per forward pass, at most (one region if it is longer)


@dataclass
class Inputs:
    kind: str  # "bed", "fasta" or "tsv"
    path: str
    genome: object = None  # a Reference, for a BED
    count: int | None = None  # regions, where known before reading them

    def regions(self):
        from genomamba.data import regions

        if self.kind == "bed":
            return regions.bed_regions(self.path, self.genome)
        if self.kind == "fasta":
            return regions.fasta_regions(self.path)
        return regions.tsv_regions(self.path)

    def describe(self) -> str:
        return f"{self.kind}:{self.path}" + (f" (genome {self.genome.path})" if self.genome is not None else "")


def open_inputs(bed=None, genome=None, fasta=None, tsv=None) -> Inputs:
    given = [(k, v) for k, v in (("bed", bed), ("fasta", fasta), ("tsv", tsv)) if v]
    if len(given) != 1:
        raise GenomambaError("give exactly one input: --bed BED --genome GENOME, --fasta FASTA or --tsv TSV")
    kind, path = given[0]
    if kind == "bed" and not genome:
        raise GenomambaError(f"{path}: a BED input needs --genome (FASTA or token shards)")
    if kind != "bed" and genome:
        raise GenomambaError(f"--genome goes with --bed; {path} carries its own sequences")
    if not os.path.isfile(path):
        raise GenomambaError(f"{path}: no such file")
    inputs = Inputs(kind, path)
    if kind == "bed":
        from genomamba.data.reference import open_reference
        from genomamba.data.regions import bed_regions

        inputs.genome = open_reference(genome)
        inputs.count = sum(1 for _ in bed_regions(path, inputs.genome, fetch=False))
        if inputs.count == 0:
            raise GenomambaError(f"{path}: no regions")
    return inputs


def batch_rows(length: int, batch_size: int) -> int:
    """Regions of ``length`` bases per batch: ``batch_size``, fewer for long regions."""
    return max(1, min(batch_size, MAX_BATCH_BASES // max(1, length)))


def length_batches(regions, batch_size: int, pending: int | None = None):
    """Lists of (index, region) of one length each (see the module docstring)."""
    pending = pending or 8 * batch_size
    waiting: dict[int, list] = {}
    count = 0
    for i, region in enumerate(regions):
        length = len(region.tokens)
        batch = waiting.setdefault(length, [])
        batch.append((i, region))
        count += 1
        if len(batch) >= batch_rows(length, batch_size):
            count -= len(waiting.pop(length))
            yield batch
        elif count >= pending:
            yield from waiting.values()
            waiting, count = {}, 0
    yield from waiting.values()


def no_regions(inputs: Inputs) -> GenomambaError:
    return GenomambaError(f"{inputs.path}: no regions")
