"""HDF5 shard layout and writer.

A shard is one HDF5 file (``shard-00000.h5``, ...) holding whole contigs. A new shard
starts once the current one holds at least ``shard_size`` bases; a contig is never
split. Inside a shard, contig number ``i`` of the genome (0-based, file order) is the
group ``/contigs/<i>``:

- ``tokens``: uint8 token ids, shape (length,), chunked (``chunk_size`` bases) and
  compressed (``compression``, default ``bitshuffle``: the bitshuffle filter with LZ4
  from ``hdf5plugin``, ~2 bits a base and about as fast to write as no compression;
  ``scaleoffset`` is HDF5's built-in integer packing, as small but ~4x slower to
  write, and needs no plugin in other HDF5 tools).
- ``softmask``: the lowercase positions as packed bits, uint8, shape
  (ceil(length / 8),): base ``j`` is bit ``7 - j % 8`` of byte ``j // 8``
  (``numpy.packbits`` order), chunked like the tokens, compressed with LZ4 (lzf when the
  tokens use a built-in filter: ``scaleoffset``, ``lzf``, ``gzip``; none with ``none``).
- ``n_runs``: int64, shape (k, 2): the [start, end) intervals of N (including IUPAC
  codes turned into N), sorted, maximal.
- attributes: ``name``, ``description`` (the header), ``length``, ``source`` (the
  FASTA path) and ``sha256`` (of the upper-cased sequence as stored: IUPAC -> N,
  U -> T). The counts (N, IUPAC, U, soft-masked) are in the manifest.

The file's root attributes are ``format`` = ``"genomamba-tokens"``, ``version``,
``vocab``, ``chunk_size`` and ``compression``. Reading needs ``import hdf5plugin``
first (``Genome`` does it); other HDF5 tools need ``HDF5_PLUGIN_PATH`` set to
``hdf5plugin.PLUGIN_PATH`` unless the shards were written with ``scaleoffset``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genomamba.data.vocab import N, VOCAB

FORMAT = "genomamba-tokens"
FORMAT_VERSION = 1
#: 65,536 bases: a 131,072-base window touches 2-3 chunks (at most ~200 KB decoded)
DEFAULT_CHUNK_SIZE = 1 << 16
DEFAULT_SHARD_SIZE = 1_000_000_000
#: bases buffered before a write; a multiple of any chunk size we allow
_FLUSH_BASES = 1 << 23

def _bitshuffle() -> dict:
    import hdf5plugin

    return dict(hdf5plugin.Bitshuffle(cname="lz4"))


def _lz4() -> dict:
    import hdf5plugin

    return dict(hdf5plugin.LZ4())


#: token compression: name -> h5py create_dataset keywords (hdf5plugin imported when used)
COMPRESSION = {
    "bitshuffle": _bitshuffle,
    "scaleoffset": lambda: {"scaleoffset": 0},
    "lzf": lambda: {"compression": "lzf"},
    "gzip": lambda: {"compression": "gzip", "compression_opts": 1},
    "none": lambda: {},
}
#: soft-mask compression for each token compression: LZ4 beside the plugin filter (lzf is
#: 6x slower on a mask with short runs), else lzf, which any HDF5 tool reads
MASK_COMPRESSION = {"bitshuffle": _lz4, "scaleoffset": COMPRESSION["lzf"], "lzf": COMPRESSION["lzf"],
                    "gzip": COMPRESSION["lzf"], "none": COMPRESSION["none"]}
DEFAULT_COMPRESSION = "bitshuffle"


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.h5"


def contig_group(index: int) -> str:
    return f"contigs/{index}"


class ContigWriter:
    """Appends one contig's tokens and soft-mask to its datasets, chunk-aligned."""

    def __init__(self, group, chunk_size: int, compression: str = DEFAULT_COMPRESSION):
        self.group = group
        self.chunk_size = chunk_size
        self.tokens = group.create_dataset(
            "tokens", shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(chunk_size,),
            **COMPRESSION[compression]())
        self.mask = group.create_dataset(
            "softmask", shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(chunk_size // 8,),
            **MASK_COMPRESSION[compression]())
        self.written = 0
        self.softmasked = 0
        self._tokens: list[np.ndarray] = []
        self._lower: list[np.ndarray | None] = []
        self._buffered = 0
        self._runs: list[np.ndarray] = []

    def append(self, tokens: np.ndarray, lower: np.ndarray | None) -> None:
        self._tokens.append(tokens)
        self._lower.append(lower)
        self._buffered += tokens.size
        if self._buffered >= _FLUSH_BASES:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._buffered:
            return
        tokens = self._tokens[0] if len(self._tokens) == 1 else np.concatenate(self._tokens)
        if any(m is not None for m in self._lower):
            lower = np.concatenate([np.zeros(t.size, np.uint8) if m is None else m
                                    for t, m in zip(self._tokens, self._lower)])
        else:
            lower = None
        n = tokens.size if final else tokens.size // self.chunk_size * self.chunk_size
        start, stop = self.written, self.written + n
        self.tokens.resize((stop,))
        self.tokens[start:stop] = tokens[:n]
        nbytes = (n + 7) // 8
        self.mask.resize((start // 8 + nbytes,))
        if lower is not None:  # else the chunks stay unwritten: they read as the fill value, 0
            self.mask[start // 8 :] = np.packbits(lower[:n])
            self.softmasked += int(np.count_nonzero(lower[:n]))
        head = tokens[:n]
        if head.size and int(head.max()) >= N:
            self._runs.append(n_runs_of(head) + start)
        self.written = stop
        rest = tokens[n:]
        self._tokens = [rest] if rest.size else []
        self._lower = [lower[n:] if lower is not None else None] if rest.size else []
        self._buffered = rest.size

    def finish(self, attrs: dict) -> dict:
        """Write what is buffered, the N runs and the attributes; return the counts."""
        self._flush(final=True)
        runs = merge_runs(np.concatenate(self._runs) if self._runs else np.zeros((0, 2), np.int64))
        self.group.create_dataset("n_runs", data=runs, dtype=np.int64)
        for key, value in {**attrs, "length": self.written}.items():
            self.group.attrs[key] = value
        return {"n_count": int((runs[:, 1] - runs[:, 0]).sum()), "softmasked": self.softmasked}


def n_runs_of(tokens: np.ndarray) -> np.ndarray:
    """[start, end) runs of N in a token array, shape (k, 2), int64."""
    is_n = tokens == N
    if not is_n.size:
        return np.zeros((0, 2), np.int64)
    edges = np.flatnonzero(is_n[1:] != is_n[:-1]) + 1  # where N-ness changes
    edges = np.concatenate(([0] if is_n[0] else [], edges, [is_n.size] if is_n[-1] else []))
    return edges.astype(np.int64).reshape(-1, 2)


def merge_runs(runs: np.ndarray) -> np.ndarray:
    """Join runs that touch (one ended where the next starts, across a write)."""
    if len(runs) < 2:
        return runs.reshape(-1, 2)
    starts = np.concatenate(([True], runs[1:, 0] != runs[:-1, 1]))
    ends = np.concatenate((starts[1:], [True]))
    return np.stack([runs[starts, 0], runs[ends, 1]], axis=1)


class ShardWriter:
    """Writes contigs, in order, into shard files in ``directory``."""

    def __init__(self, directory, *, shard_size: int = DEFAULT_SHARD_SIZE,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, compression: str = DEFAULT_COMPRESSION,
                 source: str = ""):
        if compression not in COMPRESSION:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSION)}, got {compression!r}")
        self.compression = compression
        self.directory = Path(directory)
        self.shard_size = int(shard_size)
        self.chunk_size = int(chunk_size)
        self.source = source
        self.shards: list[dict] = []
        self._file = None
        self._contig: ContigWriter | None = None
        self._index = 0

    def begin(self, name: str) -> ContigWriter:
        if self._file is None or self.shards[-1]["bases"] >= self.shard_size:
            import h5py

            self._close_shard()
            name_ = shard_name(len(self.shards))
            # no chunk cache: writes are chunk-aligned anyway, and a write that fails (a full
            # disk) then raises where it happens; with cached chunks HDF5 2.0 crashes at close
            self._file = h5py.File(self.directory / name_, "w", rdcc_nbytes=0)
            self._file.attrs.update({"format": FORMAT, "version": FORMAT_VERSION, "vocab": list(VOCAB),
                                     "chunk_size": self.chunk_size, "compression": self.compression})
            self.shards.append({"file": name_, "contigs": [], "bases": 0})
        group = self._file.create_group(contig_group(self._index))
        self._contig = ContigWriter(group, self.chunk_size, self.compression)
        self._name = name
        return self._contig

    def finish(self, attrs: dict) -> dict:
        """Finish the current contig; return its manifest entry (without the split)."""
        counts = self._contig.finish({"name": self._name, "source": self.source, **attrs})
        shard = self.shards[-1]
        length = self._contig.written
        shard["contigs"].append(self._name)
        shard["bases"] += length
        entry = {"name": self._name, "length": length, "shard": shard["file"],
                 "group": contig_group(self._index), **counts}
        self._index += 1
        self._contig = None
        return entry

    def _close_shard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> list[dict]:
        self._close_shard()
        return self.shards

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._close_shard()
