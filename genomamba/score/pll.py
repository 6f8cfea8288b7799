"""GM_PLL: a masked-LM pseudo-log-likelihood difference between the ALT and REF windows of
any sequence allele (SNV, MNV, indel), so that indels are ranked on the same footing as
SNVs.

For an allele with REF ``r`` (a bases) and ALT ``t`` (b bases), m = max(a, b), and the
scoring flank k (``pll_flank``):

- windows: REF and ALT windows of the same ``span`` bases (``engine.Windows``), built two
  ways. *Left-anchored*: the allele's first base at the centre (``flank`` bases before
  it), the rest of the span after it (``Windows.ref`` / ``Windows.alt``, as GM_EMB).
  *Right-anchored*: the allele's last base at the centre, ``flank`` bases after it.
  The right-anchored windows are what the left-anchored rule gives on the other strand,
  so averaging the two makes the score the same for a variant and its reverse
  complement; for an SNV the two coincide.
- positions: the changed bases and k bases on each side: m + 2k positions, the same in
  the REF and the ALT window (left-anchored: centre - k to centre + m + k - 1;
  right-anchored: the mirror image), clipped to the window.
- PLL(window) = sum over those positions p of log p(base at p | window with p [MASK]ed),
  over A/C/G/T (positions holding N or [PAD] add nothing), both strands (the model's own
  RC-equivariant or RC-averaged logits, as GM_LLR).
- GM_PLL = ((PLL(ALT_left) - PLL(REF_left)) + (PLL(ALT_right) - PLL(REF_right))) / 2, in nats.

Properties: exactly 0 when REF = ALT (the same masked windows, run once); antisymmetric
under swapping REF and ALT (scoring REF as the ALT of the genome that carries ALT swaps
the windows); the same on both strands for RC-equivariant or RC-averaged models; with
k = 0 an SNV's GM_PLL is its GM_LLR.

Cost: one forward row per distinct masked window: at most 4 (m + 2k) rows per ALT
(SNVs: 1 + 4k, the REF window's rows shared by the ALTs at one position).
"""

from __future__ import annotations

import numpy as np
import torch

from genomamba.data import MASK, encode

ACGT = 4  # token ids below this are bases with a likelihood
GROUP_BASES = 64 << 20  # window bases held at a time (alleles are scored in groups)


def anchored_windows(windows, allele, anchor: str):
    """(REF window, ALT window), ``windows.span`` bases each, ``anchor`` "left" or "right"."""
    if anchor == "left":
        return windows.ref(allele.contig, allele.pos), windows.alt(allele)
    ref, c, pos, f = windows.reference, allele.contig, allele.pos, windows.flank
    a, b = len(allele.ref), len(allele.alt)
    start = pos + a - 1 - f
    ref_window = ref.window(c, start, start + windows.span)
    alt_window = np.concatenate([ref.window(c, pos - (f + 1 - b), pos), encode(allele.alt),
                                 ref.window(c, pos + a, pos + a + f)])
    return ref_window, alt_window


def scored_positions(windows, allele, anchor: str, k: int) -> range:
    f, m = windows.flank, max(len(allele.ref), len(allele.alt))
    lo, hi = (f - k, f + m + k) if anchor == "left" else (f + 1 - m - k, f + 1 + k)
    return range(max(0, lo), min(windows.span, hi))


def masked_logp(model, ids: torch.Tensor) -> torch.Tensor:
    """log p(A, C, G, T) (batch, 4) at each row's [MASK] position (one per row), both
    strands, from the float32 LM head (``logits_at``)."""
    pos = (ids == MASK).to(torch.int64).argmax(1)
    return torch.log_softmax(model.logits_at(ids, pos, rc_average=True)[:, :ACGT], dim=-1)


def pll_scores(scorer, alleles, k: int) -> tuple[list[float], int]:
    """GM_PLL of each allele (each must fit ``scorer.windows``), and the forward rows run."""
    group = max(1, GROUP_BASES // (4 * scorer.windows.span))
    values, rows = [], 0
    for s in range(0, len(alleles), group):
        got, ran = _score_group(scorer, alleles[s : s + group], k)
        values += got
        rows += ran
    return values, rows


def _score_group(scorer, alleles, k: int):
    jobs: dict[bytes, int] = {}  # masked window -> its row
    masked: list[np.ndarray] = []
    plans = []  # per allele, per anchor: ([(row, base)] of REF, [(row, base)] of ALT)
    for allele in alleles:
        plan = []
        for anchor in ("left", "right"):
            positions = scored_positions(scorer.windows, allele, anchor, k)
            terms = []
            for window in anchored_windows(scorer.windows, allele, anchor):
                terms.append([(_job(jobs, masked, window, p), int(window[p])) for p in positions if window[p] < ACGT])
            plan.append(terms)
        plans.append(plan)
    if not masked:
        return [0.0] * len(alleles), 0
    logp = scorer._run(masked, lambda w: w, lambda ids: masked_logp(scorer.model, ids))
    out = []
    for plan in plans:
        (ref_l, alt_l), (ref_r, alt_r) = ([_pll(logp, t) for t in terms] for terms in plan)
        out.append(0.5 * ((alt_l - ref_l) + (alt_r - ref_r)))
    return out, len(masked)


def _job(jobs, masked, window, p) -> int:
    w = window.copy()
    w[p] = MASK
    key = w.tobytes()
    if key not in jobs:
        jobs[key] = len(masked)
        masked.append(w)
    return jobs[key]


def _pll(logp: np.ndarray, terms) -> float:
    return float(sum(logp[row, base] for row, base in terms))
