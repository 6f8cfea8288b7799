"""Streaming FASTA tokenizer: plain, gzip or bgzip input, vectorised with numpy.

The file is read in large blocks cut at line ends. Each run of sequence lines goes
through one lookup table over bytes (``vocab.BYTE_CLASS``) that gives the token id
and flags for lowercase and converted bases, so there is no Python work per base or
per line. Lines of one width (the usual layout) are viewed as a 2-D array whose last
column(s) must be the line end; irregular lines fall back to a boolean mask.

What the reader accepts and rejects (every error names the file, record and line):

- LF or CRLF line ends (a CR anywhere else is an invalid character); blank lines are
  ignored; the last line need not end in a newline.
- Bases: ``ACGTN`` in either case, ``U`` (-> T) and the IUPAC codes ``RYKMSWBDHV``
  (-> N), both counted. Lowercase is kept as the soft-mask. Anything else, including
  spaces, tabs, digits, ``*``, ``-`` and ``.``, is an error.
- Errors: an empty file, sequence before the first ``>`` header, a header with no
  name, a record with no sequence, a duplicate name (the first word of the header),
  and truncated or corrupt gzip data.

Memory stays bounded by the block size plus the longest line, whatever the contig
length: the consumer gets the sequence in pieces (``stream_fasta``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genomamba.data.vocab import (
    AMBIGUOUS_CLASS,
    BYTE_CLASS,
    CONVERTED_FLAG,
    DECODE_BYTES,
    INVALID_FLAG,
    LOWER_FLAG,
    PAIR_CLASS,
    TOKEN_BITS,
    URACIL_CLASS,
)
from genomamba.errors import GenomambaError, where

#: bytes read from the (decompressed) stream at a time
DEFAULT_BLOCK_SIZE = 16 << 20

_LF, _CR, _GT = 0x0A, 0x0D, 0x3E
_ALLOWED = "ACGTUN, IUPAC codes RYKMSWBDHV (either case)"
_OTHER_COMPRESSION = ((b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
                      (b"PK\x03\x04", "zip"))


@dataclass
class RecordStart:
    """A ``>`` header: the record's name (first word) and the full header text."""

    name: str
    description: str
    line: int  # 1-based line of the header


@dataclass
class Piece:
    """The next stretch of the current record's sequence."""

    tokens: np.ndarray  # uint8 token ids
    lower: np.ndarray | None  # nonzero where the base was lowercase; None: none were


@dataclass
class RecordEnd:
    """End of a record, with what was counted along the way."""

    name: str
    line: int  # header line
    length: int
    n_ambiguous: int  # IUPAC codes turned into N
    n_uracil: int  # U turned into T
    sha256: str  # of the upper-cased sequence as stored (IUPAC -> N, U -> T)
    offset: int  # byte offset of the first base in the uncompressed file (as in a .fai)
    line_bases: int  # bases on the first sequence line (as in a .fai)
    line_width: int  # bytes on the first sequence line, line end included (as in a .fai)


Event = RecordStart | Piece | RecordEnd


class _Record:
    __slots__ = ("name", "line", "length", "n_ambiguous", "n_uracil", "sha", "offset", "line_bases", "line_width")

    def __init__(self, name: str, line: int):
        self.name, self.line = name, line
        self.length = self.n_ambiguous = self.n_uracil = 0
        self.sha = hashlib.sha256()
        self.offset = self.line_bases = self.line_width = -1

    def end(self) -> RecordEnd:
        return RecordEnd(self.name, self.line, self.length, self.n_ambiguous, self.n_uracil,
                         self.sha.hexdigest(), self.offset, self.line_bases, self.line_width)


class FastaStream:
    """Iterate over ``RecordStart``, ``Piece`` and ``RecordEnd`` events of a FASTA file.

    ``progress(n)`` is called with the number of bytes of the file on disk consumed
    since the last call (compressed bytes for gzip input).
    """

    def __init__(self, path, *, block_size: int = DEFAULT_BLOCK_SIZE,
                 progress: Callable[[int], None] | None = None):
        self.path = Path(path)
        self.block_size = int(block_size)
        self.progress = progress
        self.line = 0  # lines fully consumed so far
        self.offset = 0  # uncompressed bytes before the current block
        self.record: _Record | None = None
        self.seen: dict[str, int] = {}
        self.n_records = 0
        self._raw_pos = 0
        self._broken: Exception | None = None  # a gzip error, reported after the data before it

    # ---- errors -----------------------------------------------------------------
    def error(self, message: str, line: int | None = None, record: str | None = None) -> GenomambaError:
        if record is None and self.record is not None:
            record = self.record.name
        return GenomambaError(f"{where(self.path, record, line)}: {message}")

    # ---- reading ------------------------------------------------------------------
    def __iter__(self) -> Iterator[Event]:
        if not self.path.exists():
            raise GenomambaError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise GenomambaError(f"{self.path}: is a directory, not a FASTA file")
        raw = open(self.path, "rb")
        try:
            magic = raw.read(6)
            raw.seek(0)
            for prefix, kind in _OTHER_COMPRESSION:
                if magic.startswith(prefix):
                    raise GenomambaError(f"{self.path}: compressed with {kind}; only plain, gzip and bgzip "
                                         "FASTA are read (recompress with bgzip)")
            packed = magic.startswith(b"\x1f\x8b")
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if packed else raw
            # gzip: read1 returns what one step decompressed, so an error in the stream comes
            # after all the data before it has been processed (and the message names its record)
            self._read_piece = stream.read1 if packed else stream.read
            for buf, end in self._blocks(raw):
                yield from self._block(buf, end)
                self.offset += end
            if self._broken is not None:
                raise self.error(f"truncated or corrupt gzip data, breaking off at or after this line "
                                 f"({self._broken})", self.line + 1) from None
            yield from self._finish()
        finally:
            raw.close()

    def _read(self, raw) -> bytes:
        """Up to block_size bytes; b"" at the end or after a gzip error (kept in _broken)."""
        if self._broken is not None:
            return b""
        pieces, size = [], 0
        try:
            while size < self.block_size:
                piece = self._read_piece(self.block_size - size)
                if not piece:
                    break
                pieces.append(piece)
                size += len(piece)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            self._broken = exc
        except OSError as exc:
            raise self.error(f"cannot read ({exc})", self.line + 1) from None
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if self.progress is not None:
            pos = raw.tell()
            self.progress(pos - self._raw_pos)
            self._raw_pos = pos
        return data

    def _blocks(self, raw) -> Iterator[tuple[bytes, int]]:
        """Yield (buffer, end): buffer[:end] is whole lines (or the rest of the file)."""
        parts: list[bytes] = []
        while True:
            data = self._read(raw)
            if not data:
                if parts and self._broken is None:  # (a broken stream's last line is incomplete)
                    rest = b"".join(parts)
                    yield rest, len(rest)
                return
            nl = data.rfind(b"\n")
            if nl < 0:  # a line longer than the block: keep reading
                parts.append(data)
                continue
            if parts:
                buf = b"".join(parts + [data])
                cut = len(buf) - len(data) + nl + 1
            else:
                buf, cut = data, nl + 1
            yield buf, cut
            parts = [buf[cut:]] if cut < len(buf) else []

    def _block(self, buf: bytes, end: int) -> Iterator[Event]:
        pos = 0
        while pos < end:
            if buf[pos] == _GT:
                nl = buf.find(b"\n", pos, end)
                stop = end if nl < 0 else nl
                yield from self._header(buf[pos + 1 : stop])
                self.line += 1
                if self.record is not None:
                    self.record.offset = self.offset + stop + 1
                pos = stop + 1
            else:
                stop = self._next_header(buf, pos, end)
                if self.record is None:
                    self._before_first_header(buf, pos, stop)
                else:
                    yield from self._sequence(buf, pos, stop)
                pos = stop

    @staticmethod
    def _next_header(buf: bytes, pos: int, end: int) -> int:
        """Start of the next line that begins with '>' (memchr for '>', not a 2-byte search)."""
        while True:
            gt = buf.find(b">", pos, end)
            if gt < 0:
                return end
            if buf[gt - 1] == _LF:
                return gt
            pos = gt + 1  # a '>' inside a line: left for the sequence check to report

    def _header(self, text: bytes) -> Iterator[Event]:
        line = self.line + 1
        yield from self._end_record()
        if text.endswith(b"\r"):
            text = text[:-1]
        try:
            description = text.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("header is not valid UTF-8 text", line) from None
        words = description.split(maxsplit=1)
        if not words:
            raise self.error("header '>' has no name", line)
        name = words[0]
        if name in self.seen:
            raise self.error(f"duplicate contig name (first seen at line {self.seen[name]})", line, name)
        self.seen[name] = line
        self.record = _Record(name, line)
        self.n_records += 1
        yield RecordStart(name, description, line)

    def _end_record(self) -> Iterator[Event]:
        rec = self.record
        if rec is None:
            return
        if rec.length == 0:
            raise self.error("record has no sequence", rec.line)
        self.record = None
        yield rec.end()

    def _finish(self) -> Iterator[Event]:
        yield from self._end_record()
        if self.n_records == 0:
            raise GenomambaError(f"{self.path}: empty file (no FASTA records)")

    def _before_first_header(self, buf: bytes, start: int, stop: int) -> None:
        chunk = buf[start:stop]
        stripped = chunk.lstrip()
        if stripped:
            first = start + len(chunk) - len(stripped)
            line = self.line + buf.count(b"\n", start, first) + 1
            raise GenomambaError(f"{where(self.path, None, line)}: no '>' header before the sequence "
                                 "(not a FASTA file?)")
        self.line += chunk.count(b"\n")

    # ---- sequence lines ------------------------------------------------------------
    def _sequence(self, buf: bytes, start: int, stop: int) -> Iterator[Event]:
        rec = self.record
        nl = buf.find(b"\n", start, stop)
        if rec.line_bases < 0:  # first sequence line: the layout a .fai records
            width = (nl if nl >= 0 else stop) - start
            crlf = nl > start and buf[nl - 1] == _CR
            rec.line_bases = width - crlf
            rec.line_width = width + 1 if nl >= 0 else rec.line_bases + 1
        if nl >= 0:
            width = nl - start + 1
            eol = 2 if width >= 2 and buf[nl - 1] == _CR else 1
            bases = width - eol
            rows = (stop - start) // width
            if bases > 0 and rows > 0:
                arr = np.frombuffer(buf, np.uint8, count=rows * width, offset=start).reshape(rows, width)
                ok = bool((arr[:, bases + eol - 1] == _LF).all())
                if ok and eol == 2:
                    ok = bool((arr[:, bases] == _CR).all())
                if ok:
                    seq = np.ascontiguousarray(arr[:, :bases]).reshape(-1)
                    cls = classify(seq)
                    if not int(np.bitwise_or.reduce(cls)) & INVALID_FLAG:
                        yield self._piece(cls, seq)
                        self.line += rows
                        start += rows * width
                    # else: the general path below finds and reports the bad byte
        if start < stop:
            yield from self._irregular(buf, start, stop)

    def _irregular(self, buf: bytes, start: int, stop: int) -> Iterator[Event]:
        """Any layout: drop line ends with a mask. Also pinpoints invalid bytes."""
        a = np.frombuffer(buf, np.uint8, count=stop - start, offset=start)
        n_cr = buf.count(b"\r", start, stop)
        if n_cr and n_cr != buf.count(b"\r\n", start, stop):
            pos = start
            while True:
                pos = buf.find(b"\r", pos, stop)
                if buf[pos + 1 : pos + 2] != b"\n":
                    self._invalid(buf, start, pos)
                pos += 1
        keep = (a != _LF) & (a != _CR)
        seq = a[keep]
        cls = classify(seq)
        if cls.size:
            if int(np.bitwise_or.reduce(cls)) & INVALID_FLAG:
                first = int(np.flatnonzero(cls == 0xFF)[0])
                self._invalid(buf, start, start + int(np.flatnonzero(keep)[first]))
            yield self._piece(cls, seq)
        self.line += buf.count(b"\n", start, stop)

    def _invalid(self, buf: bytes, start: int, pos: int):
        line = self.line + buf.count(b"\n", start, pos) + 1
        column = pos - (buf.rfind(b"\n", 0, pos) + 1) + 1
        char = bytes([buf[pos]])
        shown = repr(char.decode("latin-1")) if 32 <= buf[pos] < 127 else f"byte 0x{buf[pos]:02x} {char!r}"
        raise self.error(f"invalid character {shown} at column {column} (allowed: {_ALLOWED})", line)

    def _piece(self, cls: np.ndarray, seq: np.ndarray) -> Piece:
        """Split classes into tokens and soft-mask, count conversions, hash the sequence."""
        rec = self.record
        flags = int(np.bitwise_or.reduce(cls))
        tokens = np.bitwise_and(cls, TOKEN_BITS) if flags & ~TOKEN_BITS else cls
        if flags & CONVERTED_FLAG:  # IUPAC codes or U: count them, hash the stored letters
            base = np.bitwise_and(cls, ~LOWER_FLAG & 0xFF)
            rec.n_ambiguous += int(np.count_nonzero(base == AMBIGUOUS_CLASS))
            rec.n_uracil += int(np.count_nonzero(base == URACIL_CLASS))
            letters = DECODE_BYTES[tokens]
        else:  # only ACGTN, either case: upper-casing is clearing bit 5
            letters = np.bitwise_and(seq, 0xDF)
        rec.sha.update(letters)
        rec.length += tokens.size
        lower = np.bitwise_and(cls, LOWER_FLAG) if flags & LOWER_FLAG else None
        return Piece(tokens, lower)


def classify(seq: np.ndarray) -> np.ndarray:
    """``BYTE_CLASS`` of every byte of a contiguous uint8 array, two bytes per lookup."""
    even = seq.size & ~1
    pairs = PAIR_CLASS[seq[:even].view(np.uint16)].view(np.uint8)  # (fancy indexing beats np.take here)
    if even == seq.size:
        return pairs
    out = np.empty(seq.size, np.uint8)
    out[:even] = pairs
    out[even:] = BYTE_CLASS[seq[even:]]
    return out


def stream_fasta(path, **kwargs) -> FastaStream:
    """Events of a FASTA file: ``RecordStart``, then ``Piece``s, then ``RecordEnd``, per record."""
    return FastaStream(path, **kwargs)


@dataclass
class FastaRecord:
    name: str
    description: str
    tokens: np.ndarray
    softmask: np.ndarray  # bool
    info: RecordEnd


def read_fasta(path, **kwargs) -> Iterator[FastaRecord]:
    """Whole records, for small files and tests (``stream_fasta`` for genomes)."""
    start, tokens, masks = None, [], []
    for ev in stream_fasta(path, **kwargs):
        if isinstance(ev, RecordStart):
            start, tokens, masks = ev, [], []
        elif isinstance(ev, Piece):
            tokens.append(ev.tokens)
            masks.append(ev.lower.astype(bool) if ev.lower is not None else np.zeros(ev.tokens.size, bool))
        else:
            yield FastaRecord(start.name, start.description, np.concatenate(tokens), np.concatenate(masks), ev)


# ---- .fai consistency ---------------------------------------------------------------
def fai_path(fasta) -> Path:
    return Path(os.fspath(fasta) + ".fai")


def check_fai(fasta, records: list[RecordEnd]) -> None:
    """If ``FASTA.fai`` exists, check that it describes ``records`` (name, length, offset,
    line bases, line width, in order); raise ``GenomambaError`` naming the stale line.

    Tools that trust the index (samtools, pysam, pyfaidx with an up-to-date mtime) would
    read the wrong bases from a stale one, so a stale index is an error, not a warning.
    """
    fai = fai_path(fasta)
    if not fai.exists():
        return
    hint = f"rebuild it (samtools faidx {fasta}) or delete it"
    with open(fai, encoding="utf-8", errors="replace") as f:
        rows = [line.rstrip("\r\n").split("\t") for line in f]
    for i, rec in enumerate(records):
        line = i + 1
        if i >= len(rows):
            raise GenomambaError(f"{where(fai, rec.name, line)}: stale index: it ends before record "
                                 f"{rec.name!r} ({fasta} line {rec.line}); {hint}")
        row = rows[i]
        try:
            name, length, offset, line_bases, line_width = row[0], *map(int, row[1:5])
        except (ValueError, IndexError):
            raise GenomambaError(f"{where(fai, None, line)}: not a .fai line ({len(row)} fields); {hint}") from None
        if name != rec.name:
            raise GenomambaError(f"{where(fai, name, line)}: stale index: {fasta} has record {rec.name!r} "
                                 f"here (line {rec.line}); {hint}")
        found = (rec.length, rec.offset, rec.line_bases, rec.line_width)
        for what, want, have in zip(("length", "offset", "line bases", "line width"),
                                    found, (length, offset, line_bases, line_width)):
            if want != have and not (what == "line width" and rec.length <= rec.line_bases):
                raise GenomambaError(f"{where(fai, name, line)}: stale index: {what} is {have} in the index "
                                     f"but {want} in {fasta} (header at line {rec.line}); {hint}")
    if len(rows) > len(records):
        extra = rows[len(records)][0]
        raise GenomambaError(f"{where(fai, extra, len(records) + 1)}: stale index: record {extra!r} "
                             f"is not in {fasta}; {hint}")
