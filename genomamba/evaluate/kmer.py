"""The k-mer baseline: a masked-centre model fitted on the reference.

For every position of the reference with ``flank`` A/C/G/T bases on each side, count the
centre base given its context (the ``2 * flank`` bases around it), on both strands (the
reverse complement of a window is counted too, so the model is strand-symmetric like
genomamba's). The score of an SNV is then the same kind of LLR genomamba reports,

    log p(ALT | context) - log p(REF | context),

from those counts plus a pseudocount of 1 per base, with the variant's own site left out
(one REF count removed from its context), so that a variant is not scored by a model that
has seen it. SNVs whose context leaves the contig or holds N get no score.
"""

from __future__ import annotations

import numpy as np

from genomamba.errors import GenomambaError

CHUNK = 1 << 20  # bases per fitting step (memory: about 50 bytes a base)


def _context_codes(tokens: np.ndarray, flank: int):
    """(context code, centre base) of every full window of ``tokens`` (uint8, 0-3 = ACGT),
    and a mask of windows that hold only A/C/G/T. Context code: the 2*flank bases around
    the centre as a base-4 number, left to right."""
    width = 2 * flank + 1
    n = tokens.size - width + 1
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    windows = np.lib.stride_tricks.sliding_window_view(tokens, width)
    valid = (windows < 4).all(axis=1)
    context = np.delete(windows, flank, axis=1).astype(np.int64)
    powers = 4 ** np.arange(2 * flank - 1, -1, -1, dtype=np.int64)
    return context @ powers, windows[:, flank].astype(np.int64), valid


class KmerCentreModel:
    """Counts of the centre base per context, fitted with ``fit(reference)``."""

    def __init__(self, flank: int = 3):
        if not isinstance(flank, int) or isinstance(flank, bool) or not 1 <= flank <= 5:
            raise GenomambaError(f"kmer_flank must be an integer from 1 to 5, got {flank!r}")
        self.flank = flank
        self.counts = np.zeros((4 ** (2 * flank), 4), dtype=np.int64)

    def _count(self, tokens: np.ndarray) -> None:
        for strand in (tokens, np.where(tokens < 4, 3 - tokens, tokens)[::-1]):
            code, centre, valid = _context_codes(np.ascontiguousarray(strand), self.flank)
            cells = code[valid] * 4 + centre[valid]
            self.counts += np.bincount(cells, minlength=self.counts.size).reshape(self.counts.shape)

    def fit(self, reference, contigs=None) -> "KmerCentreModel":
        """Count every contig of ``reference`` (a ``genomamba.data.reference.Reference``)."""
        width = 2 * self.flank
        for name in contigs or reference.contigs:
            length = reference.length(name)
            for start in range(0, length, CHUNK):
                self._count(reference.fetch(name, start, min(length, start + CHUNK + width)))
        return self

    def llr(self, reference, chrom: str, pos: int, ref: str, alt: str) -> float | None:
        """LLR of the SNV ``ref``>``alt`` at 1-based ``pos``; None where it does not apply."""
        base = {"A": 0, "C": 1, "G": 2, "T": 3}
        if len(ref) != 1 or len(alt) != 1 or ref not in base or alt not in base or chrom not in reference:
            return None
        centre = pos - 1
        window = reference.window(chrom, centre - self.flank, centre + self.flank + 1)
        if window[self.flank] != base[ref]:
            raise GenomambaError(f"{reference.path}: REF {ref} of {chrom}:{pos} disagrees with the reference "
                                 f"({'ACGTN'[window[self.flank]] if window[self.flank] < 5 else 'beyond the contig'})")
        if (window >= 4).any():
            return None
        code, _, _ = _context_codes(window, self.flank)
        row = self.counts[int(code[0])].astype(np.float64) + 1.0
        row[base[ref]] -= 1.0  # leave the variant's own site out
        return float(np.log(row[base[alt]]) - np.log(row[base[ref]]))
