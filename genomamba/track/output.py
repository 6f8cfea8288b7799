"""The track's outputs, from each part's log-probabilities (``logp``: (n, 4) float32, the
log-softmax over A, C, G, T at each masked position; NaN rows where the reference base is
not A/C/G/T):

- ``position_scores``: the bigWig's value per position (min-llr, mean-llr, entropy, ref-logp);
- ``BigWigWriter``: OUT.bw, every reference contig in the header, one value per scored base
  (fixed-step runs of 1 base; positions without a value are gaps);
- ``AltsWriter``: OUT.tsv.gz, ``chrom pos ref A C G T`` (pos 1-based; each base's column the
  LLR of that base as ALT, the REF's own column 0), bgzipped, with a tabix index (.tbi).

Both are written to temporaries and renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import numpy as np

from genomamba.files import AtomicFile, raise_if_full

BASES = "ACGT"


def llrs(logp: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(n, 4) LLRs log p(b) - log p(ref) for each base b (0 in the REF's own column)."""
    rows = np.arange(len(ref))
    return logp - logp[rows, np.minimum(ref, 3)][:, None]


def position_scores(logp: np.ndarray, ref: np.ndarray, score: str) -> np.ndarray:
    """One float32 value per position (NaN where ``logp`` is NaN)."""
    logp = logp.astype(np.float64)
    if score == "entropy":
        return (-(np.exp(logp) * logp).sum(axis=1)).astype(np.float32)
    if score == "ref-logp":
        return logp[np.arange(len(ref)), np.minimum(ref, 3)].astype(np.float32)
    rows, own = np.arange(len(ref)), np.minimum(ref, 3)
    alts = llrs(logp, ref)
    if score == "min-llr":
        alts[rows, own] = np.inf  # the three ALTs only
        out = alts.min(axis=1)
    else:  # mean-llr: the REF's own column is 0
        out = alts.sum(axis=1) / 3.0
    out[np.isnan(logp).any(axis=1)] = np.nan
    return out.astype(np.float32)


class BigWigWriter:
    def __init__(self, path: str, contigs: list[tuple[str, int]]):
        import pyBigWig

        self.target = AtomicFile(path)
        self.bw = None
        try:
            self.bw = pyBigWig.open(self.target.tmp, "w")
            self.bw.addHeader(contigs, maxZooms=10)
        except BaseException:
            self.abort()
            raise

    def add(self, contig: str, start: int, values: np.ndarray) -> int:
        """Values of bases ``start, start + 1, ...`` (NaN: no value); returns how many were written."""
        ok = ~np.isnan(values)
        if not ok.any():
            return 0
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
        for lo, hi in zip(edges[::2], edges[1::2]):
            self.bw.addEntries(contig, int(start + lo), values=values[lo:hi].astype(np.float64).tolist(),
                               span=1, step=1)
        return int(ok.sum())

    def close(self) -> None:
        try:
            self.bw.close()
        except BaseException:
            self.bw = None
            self.abort()
            raise
        self.target.commit()

    def abort(self) -> None:
        """Remove the temporary; pyBigWig reports a failed write without its errno, so a
        full disk is found by a probe write first (``raise_if_full``)."""
        try:
            raise_if_full(self.target.tmp)
            if self.bw is not None:
                with contextlib.suppress(RuntimeError):  # closing a file that failed to write
                    self.bw.close()
        finally:
            self.target.discard()


class AltsWriter:
    """Plain text into a private temporary first; bgzipped and indexed at ``close``."""

    def __init__(self, path: str):
        self.path = path
        # named like every temporary of ``path`` (.NAME.*.tmp), so that a rerun's
        # remove_stale_temporaries(path) finds the one a killed run left
        fd, self.plain = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tsv.tmp",
                                          dir=os.path.dirname(os.path.abspath(path)))
        self.fh = os.fdopen(fd, "w")
        self.fh.write("#chrom\tpos\tref\tA\tC\tG\tT\n")

    def add(self, contig: str, start: int, logp: np.ndarray, ref: np.ndarray) -> None:
        values = llrs(logp.astype(np.float64), ref)
        for i in np.flatnonzero(~np.isnan(logp).any(axis=1)):
            r = int(ref[i])
            cells = ["0" if b == r else f"{values[i, b]:.6g}" for b in range(4)]
            self.fh.write(f"{contig}\t{start + i + 1}\t{BASES[r]}\t" + "\t".join(cells) + "\n")

    def close(self) -> None:
        import pysam

        self.fh.close()
        data, index = AtomicFile(self.path), AtomicFile(self.path + ".tbi")
        try:
            pysam.tabix_compress(self.plain, data.tmp, force=True)
            pysam.tabix_index(data.tmp, force=True, seq_col=0, start_col=1, end_col=1, meta_char="#",
                              keep_original=True)
            os.replace(data.tmp + ".tbi", index.tmp)
            data.commit()
            index.commit()
        except BaseException:
            data.discard()
            index.discard()
            for leftover in (data.tmp + ".tbi",):
                if os.path.exists(leftover):
                    os.remove(leftover)
            raise
        finally:
            os.remove(self.plain)

    def abort(self) -> None:
        self.fh.close()
        os.remove(self.plain)
