"""Read access to a reference genome given as token shards (a directory) or a FASTA file.

``open_reference(path)`` returns a ``Reference`` whatever the input:

- a directory of tokenized shards (``genomamba tokenize`` output), read with ``genomamba.data.Genome``;
- a FASTA file, plain or bgzip-compressed, read with pyfaidx (which writes a ``.fai`` next to it);
- a FASTA compressed with plain gzip (which pyfaidx cannot index), one in a directory where
  the index cannot be written, or any FASTA with ``in_memory=True``: read into memory once
  (fine for small genomes; ``bgzip`` large ones).

Sequences come back as uint8 token ids (``genomamba.data.vocab``); ``window`` pads with
``[PAD]`` beyond the contig ends.
"""

from __future__ import annotations

import gzip
import os
import sys

import numpy as np

from genomamba.data import PAD, encode
from genomamba.errors import GenomambaError


class Reference:
    """Contig names, lengths and token slices of one genome."""

    def __init__(self, path, lengths: dict[str, int], fetch):
        self.path = str(path)
        self._lengths = lengths
        self._fetch = fetch

    @property
    def contigs(self) -> list[str]:
        return list(self._lengths)

    def __contains__(self, name) -> bool:
        return name in self._lengths

    def length(self, name: str) -> int:
        try:
            return self._lengths[name]
        except KeyError:
            raise GenomambaError(f"{self.path}: unknown contig {name!r}") from None

    def fetch(self, name: str, start: int, end: int) -> np.ndarray:
        """Tokens of ``name[start:end]`` (0-based, end exclusive), clipped to the contig."""
        n = self.length(name)
        start, end = max(0, start), min(n, end)
        if end <= start:
            return np.zeros(0, dtype=np.uint8)
        return np.asarray(self._fetch(name, start, end), dtype=np.uint8)

    def window(self, name: str, start: int, end: int) -> np.ndarray:
        """Tokens of ``name[start:end]`` with ``[PAD]`` where the range leaves the contig."""
        out = np.full(end - start, PAD, dtype=np.uint8)
        n = self.length(name)
        lo, hi = max(0, start), min(n, end)
        if hi > lo:
            out[lo - start : hi - start] = self.fetch(name, lo, hi)
        return out


def open_reference(path, in_memory: bool = False) -> Reference:
    path = os.fspath(path)
    if os.path.isdir(path):
        return _open_shards(path)
    if not os.path.exists(path):
        raise GenomambaError(f"{path}: reference not found (give a FASTA file or a token-shard directory)")
    if in_memory:
        return _load_fasta_in_memory(path)
    return _open_fasta(path)


def _open_shards(path) -> Reference:
    try:
        from genomamba.data import Genome
    except ImportError as exc:  # pragma: no cover - the data package provides it
        raise GenomambaError(f"{path}: reading token shards needs genomamba.data.Genome ({exc})") from None
    genome = Genome(path)
    lengths = {name: int(genome.length(name)) for name in genome.contigs}
    return Reference(path, lengths, lambda name, s, e: genome.fetch(name, s, e))


def _is_gzip(path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _is_plain_gzip(path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(18)
    if head[:2] != b"\x1f\x8b":
        return False
    # bgzip blocks carry the extra subfield "BC" (RFC 1952 FEXTRA, flag bit 2)
    return not (len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC")


def _open_fasta(path) -> Reference:
    if _is_plain_gzip(path):
        print(f"genomamba: {path} is gzip but not bgzip; reading it into memory "
              "(bgzip it to have it indexed instead)", file=sys.stderr)
        return _load_fasta_in_memory(path)
    import pyfaidx

    try:
        fasta = pyfaidx.Fasta(path, as_raw=True, sequence_always_upper=True)
    except PermissionError:
        print(f"genomamba: cannot write the index of {path}; reading it into memory", file=sys.stderr)
        return _load_fasta_in_memory(path)
    except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, ValueError) as exc:
        raise GenomambaError(f"{path}: cannot index FASTA ({exc})") from None
    lengths = {name: len(fasta[name]) for name in fasta.keys()}

    def fetch(name, start, end):
        return _encode_checked(fasta[name][start:end], path, name)

    return Reference(path, lengths, fetch)


def _load_fasta_in_memory(path) -> Reference:
    seqs: dict[str, list[str]] = {}
    name = None
    with (gzip.open(path, "rt") if _is_gzip(path) else open(path)) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if line.startswith(">"):
                name = line[1:].split()[0] if line[1:].split() else ""
                if not name or name in seqs:
                    raise GenomambaError(f"{path}, line {lineno}: empty or duplicate FASTA name {name!r}")
                seqs[name] = []
            elif line:
                if name is None:
                    raise GenomambaError(f"{path}, line {lineno}: sequence before the first '>' header")
                seqs[name].append(line)
    tokens = {n: _encode_checked("".join(parts), path, n) for n, parts in seqs.items()}
    return Reference(path, {n: len(t) for n, t in tokens.items()}, lambda n, s, e: tokens[n][s:e])


def _encode_checked(seq, path, name) -> np.ndarray:
    try:
        return encode(seq)
    except ValueError as exc:
        raise GenomambaError(f"{path}, record {name!r}: {exc}") from None
