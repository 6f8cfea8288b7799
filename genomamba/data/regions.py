"""Sequences to run a model on, read one at a time from the files people have.

Each reader is a generator of ``Region`` (name, uint8 tokens, label or None, line), so a
caller that handles one region at a time needs memory for one region, not for the file:

- ``bed_regions(path, genome)``: ``chrom  start  end  [label  score  strand]`` (0-based,
  end exclusive; a 6th column ``-`` reverse-complements the interval), cut from ``genome``
  (anything ``genomamba.data.reference.open_reference`` opens, or a ``Reference``). The
  name is a samtools region, ``chrom:start-end`` 1-based inclusive (BED ``c 0 10`` is
  ``c:1-10``), with ``(-)`` appended for ``-`` intervals; the 4th column
  is the label (fine-tuning sets) or, for other BEDs, whatever name they carry there;
- ``tsv_regions(path)``: ``sequence[<TAB>label]``, or columns named in a header row
  (``sequence``, and optionally ``label`` and ``name`` or ``id``); names default to
  ``lineN``;
- ``fasta_regions(path)``: one region per FASTA record (plain, gzip or bgzip), read by
  the tokenizer's reader, so its checks apply (an empty file, a record without sequence,
  a duplicate name and an invalid character are errors naming the record and line).

``labelled=True`` (fine-tuning) makes the label column required. Bad input raises a
one-line ``GenomambaError`` naming the file, record and line; ``fetch=False`` checks the
BED lines against the genome without reading any bases (a quick pass before the real one).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from genomamba.data.vocab import encode, reverse_complement
from genomamba.errors import GenomambaError, where


@dataclass
class Region:
    name: str
    tokens: np.ndarray  # uint8 token ids (empty when read with fetch=False)
    label: str | None
    line: int  # 1-based line of the record in its file


def bed_regions(path, genome, labelled: bool = False, fetch: bool = True) -> Iterator[Region]:
    if not hasattr(genome, "window"):
        from genomamba.data.reference import open_reference

        genome = open_reference(genome)
    need = 4 if labelled else 3
    columns = "chrom, start, end, label" if labelled else "chrom, start, end"
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < need:
                raise GenomambaError(f"{where(path, line=lineno)}: expected {columns} (tab-separated), "
                                     f"got {len(fields)} column(s)")
            chrom = fields[0]
            label = fields[3].strip() if len(fields) > 3 else None
            name = f"{chrom}:{fields[1]}-{fields[2]}"
            at = where(path, record=name, line=lineno)
            try:
                start, end = int(fields[1]), int(fields[2])
            except ValueError:
                raise GenomambaError(f"{at}: start/end are not integers") from None
            if 0 <= start < end:  # the name as a samtools region: 1-based, inclusive
                name = f"{chrom}:{start + 1}-{end}"
                at = where(path, record=name, line=lineno)
            if not 0 <= start < end:
                raise GenomambaError(f"{at}: need 0 <= start < end")
            if chrom not in genome:
                raise GenomambaError(f"{at}: contig {chrom!r} not in {genome.path}")
            if end > genome.length(chrom):
                raise GenomambaError(f"{at}: end {end} is beyond the end of {chrom} ({genome.length(chrom)} bases)")
            if labelled and not label:
                raise GenomambaError(f"{at}: empty label")
            strand = fields[5].strip() if len(fields) > 5 else "+"
            if strand not in ("+", "-", "."):
                raise GenomambaError(f"{at}: strand must be +, - or ., got {strand!r}")
            tokens = np.zeros(0, dtype=np.uint8)
            if fetch:
                tokens = genome.fetch(chrom, start, end)
                if strand == "-":
                    tokens = reverse_complement(tokens)
            yield Region(name + ("(-)" if strand == "-" else ""), np.ascontiguousarray(tokens), label or None, lineno)


def tsv_regions(path, labelled: bool = False) -> Iterator[Region]:
    seq_col, label_col, name_col = 0, 1, None
    first = True
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            lowered = [f.strip().lower() for f in fields]
            is_first, first = first, False
            if is_first and "sequence" in lowered:
                if labelled and "label" not in lowered:
                    raise GenomambaError(f"{where(path, line=lineno)}: header has 'sequence' but no 'label' column")
                seq_col = lowered.index("sequence")
                label_col = lowered.index("label") if "label" in lowered else None
                name_col = next((lowered.index(k) for k in ("name", "id") if k in lowered), None)
                continue
            need = max(seq_col, name_col or 0, label_col if labelled else 0) + 1
            if len(fields) < need:
                what = "sequence, label" if labelled else "sequence"
                raise GenomambaError(f"{where(path, line=lineno)}: expected {need} tab-separated columns "
                                     f"({what}), got {len(fields)}")
            name = fields[name_col].strip() if name_col is not None else f"line{lineno}"
            label = fields[label_col].strip() if label_col is not None and label_col < len(fields) else None
            if labelled and not label:
                raise GenomambaError(f"{where(path, record=name, line=lineno)}: empty label")
            yield Region(name, encode_sequence(fields[seq_col].strip(), path, name, lineno), label or None, lineno)


def fasta_regions(path) -> Iterator[Region]:
    from genomamba.data.fasta import read_fasta

    if not os.path.isfile(path):
        raise GenomambaError(f"{path}: no such file")
    for record in read_fasta(path):
        yield Region(record.name, record.tokens, None, record.info.line)


# --- helpers (also used by the fine-tuning readers) ------------------------------------


def encode_sequence(seq: str, path, name, lineno) -> np.ndarray:
    if not seq:
        raise GenomambaError(f"{where(path, record=name, line=lineno)}: empty sequence")
    try:
        return encode(seq)
    except (ValueError, UnicodeEncodeError) as exc:
        raise GenomambaError(f"{where(path, record=name, line=lineno)}: {exc}") from None


def strip_gz(path: str) -> str:
    return path[:-3] if path.endswith(".gz") else path


def open_text(path):
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rt")
        return open(path)
    except OSError as exc:
        raise GenomambaError(f"{path}: {exc.strerror}") from None
