"""Window geometry shared by the commands that score one masked position at a time
(``genomamba score``'s GM_LLR, ``genomamba track``).

``odd_span(window)`` gives ``(flank, span)``: ``flank = (window - 1) // 2`` bases each side
of the position, ``span = 2 * flank + 1`` (odd, so the position sits exactly in the middle
and the reverse-complemented window is centred on the same base). ``masked_windows`` cuts
the windows of consecutive positions out of one padded stretch of reference, each with its
middle base replaced by ``[MASK]``: the same windows as ``reference.window(contig, pos -
flank, pos - flank + span)`` with ``[MASK]`` at ``flank``, one fetch instead of one per
position.
"""

from __future__ import annotations

import numpy as np

from genomamba.data.vocab import MASK


def odd_span(window: int) -> tuple[int, int]:
    flank = (window - 1) // 2
    return flank, 2 * flank + 1


def masked_windows(padded: np.ndarray, flank: int, positions: np.ndarray) -> np.ndarray:
    """(len(positions), 2 * flank + 1) uint8 windows of ``positions`` of ``padded`` (a
    stretch whose index ``i + flank`` is position ``i``: ``flank`` bases or ``[PAD]``
    before its first position), the middle of each ``[MASK]``ed."""
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * flank + 1)
    out = np.array(view[np.asarray(positions)], dtype=np.uint8)
    out[:, flank] = MASK
    return out
