"""The HDF5 file ``genomamba embed`` writes, streamed: every dataset is chunked and grows
along its first axis as batches arrive (in any order: each region carries its index), so
memory does not grow with the number of regions. The file is written under a temporary
name beside ``path`` and renamed into place only when complete (``genomamba.files``).

Datasets (n = regions, in input order):

- ``names`` (n,) UTF-8 strings; ``lengths`` (n,) int64 bases;
- ``labels`` (n,) strings, only where the input has them (BED 4th column, TSV ``label``);
- ``embeddings`` (n, d) or, unpooled, (n, L, d), float32 or float16.

Attributes: the settings and provenance given to ``EmbeddingFile`` (format
``genomamba-embeddings``, version 1, model, input, pooling, layer, ...), plus ``d``.
"""

from __future__ import annotations

import sys

import numpy as np

from genomamba.errors import GenomambaError, where
from genomamba.files import AtomicFile

ROW_CHUNK = 4096  # names, lengths, labels: rows per chunk
CHUNK_BYTES = 1 << 20  # embeddings: about this many bytes per chunk


class EmbeddingFile:
    def __init__(self, path, dtype: str, attrs: dict, per_position: bool, source: str):
        self.path, self.dtype, self.attrs = str(path), np.dtype(dtype), attrs
        self.per_position, self.source = per_position, source
        self.n = 0
        self.shape: tuple = (0,)
        self._emb = self._labels = None

    def __enter__(self):
        import h5py

        self._h5py = h5py
        self._file = AtomicFile(self.path)
        # no chunk cache: a failed write (a full disk) raises where it happens; with cached
        # chunks HDF5 2.0 fails later, while closing, and crashes the process
        try:
            self._f = h5py.File(self._file.tmp, "w", rdcc_nbytes=0)
            for key, value in self.attrs.items():
                self._f.attrs[key] = value
            self._names = self._rows("names", h5py.string_dtype("utf-8"))
            self._lengths = self._rows("lengths", np.int64)
        except BaseException:  # __exit__ does not run when __enter__ fails
            if getattr(self, "_f", None) is not None:
                self.__exit__(*sys.exc_info())
            else:
                self._file.discard()
            raise
        return self

    def _rows(self, name, dtype):
        return self._f.create_dataset(name, shape=(self.n,), maxshape=(None,), dtype=dtype, chunks=(ROW_CHUNK,))

    def write(self, batch, feats: np.ndarray) -> None:
        """``batch``: (index, Region) pairs; ``feats``: their features, one row each."""
        if self._emb is None:
            self._create(feats)
        elif self.per_position and feats.shape[1] != self._emb.shape[1]:
            _, region = batch[0]
            raise GenomambaError(
                f"{where(self.source, record=region.name, line=region.line)}: {feats.shape[1]} bases, but other "
                f"regions have {self._emb.shape[1]}; pooling none stores (n, L, d) and needs regions of one length")
        index = np.array([i for i, _ in batch])
        order = np.argsort(index)
        top = int(index.max()) + 1
        if top > self.n:
            self.n = top
            for ds in (self._names, self._lengths, self._emb, self._labels):
                if ds is not None:
                    ds.resize(top, axis=0)
        if self._labels is None and any(r.label is not None for _, r in batch):
            self._labels = self._rows("labels", self._h5py.string_dtype("utf-8"))
        rows = index[order]
        regions = [batch[j][1] for j in order]
        self._names[rows] = [r.name for r in regions]
        self._lengths[rows] = [len(r.tokens) for r in regions]
        if self._labels is not None:
            self._labels[rows] = [r.label or "" for r in regions]
        self._emb[rows] = feats[order].astype(self.dtype)
        self.shape = self._emb.shape

    def _create(self, feats: np.ndarray) -> None:
        inner = feats.shape[1:]
        per_row = int(np.prod(inner)) * self.dtype.itemsize
        if self.per_position:
            length, d = inner
            chunks = (1, max(1, min(length, CHUNK_BYTES // (d * self.dtype.itemsize))), d)
        else:
            chunks = (max(1, min(ROW_CHUNK, CHUNK_BYTES // per_row)), *inner)
        self._emb = self._f.create_dataset("embeddings", shape=(self.n, *inner), maxshape=(None, *inner),
                                           dtype=self.dtype, chunks=chunks)
        self._f.attrs["d"] = inner[-1]

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._f.close()
        except Exception:
            if exc_type is None:
                raise
        if exc_type is None:
            self._file.commit()
        else:
            self._file.discard()
