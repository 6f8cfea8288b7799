"""Model side of variant scoring: windows around alleles, batched forward passes, scores.

Window geometry (``span`` = the window, made odd so that the variant sits exactly in the
middle and the window of the reverse-complemented variant is the reverse complement of
this one): ``flank = (window - 1) // 2`` bases left of the allele's first base, then the
allele, then the right flank up to ``span = 2 * flank + 1`` bases; ``[PAD]`` past the
contig ends.

Scores, for one ALT:

- ``llr`` (SNVs): log p(ALT) - log p(REF) from the masked LM at the variant position, with
  that position [MASK]ed in the reference window. Both strands: "ps" models are
  RC-equivariant by construction; other models average the logits of both strands, which
  averages the two strands' scores exactly (the log normaliser cancels in the difference).
  All ALTs at one position share one forward pass.
- ``emb`` (any non-symbolic allele that fits the window): cosine distance between the
  mean-pooled (non-[PAD] positions) final embeddings of the REF and ALT windows. Both
  strands enter: the "ps" layout holds both, other models concatenate the pooled features
  of both strands. The REF window is computed once per position.
- ``pll`` (any allele that fits the window; off by default): the masked-LM
  pseudo-log-likelihood difference of the ALT and REF windows over the changed bases and
  ``pll_flank`` bases each side (``genomamba.score.pll``).
- ``head`` (with a fine-tuned classifier): softmax(f(ALT window)) - softmax(f(REF window))
  per class, with RC-averaged predictions; the window is the classifier's training length.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from genomamba.data import MASK, PAD, encode
from genomamba.data.windows import odd_span  # the geometry genomamba track shares
from genomamba.device import autocast
from genomamba.score.settings import DEFAULTS
from genomamba.score.variants import Allele

SCORES = ("llr", "emb", "pll")


@dataclass
class AlleleScores:
    llr: float | None = None
    emb: float | None = None
    pll: float | None = None
    head: np.ndarray | None = None


@dataclass
class WorkCounts:
    """Forward-pass rows run, per score (after sharing)."""

    llr: int = 0
    emb: int = 0
    pll: int = 0
    head: int = 0


class Windows:
    """Reference and ALT windows of one span, read from a ``Reference``."""

    def __init__(self, reference, window: int):
        self.reference = reference
        self.flank, self.span = odd_span(window)

    def fits(self, allele: Allele) -> bool:
        return max(len(allele.ref), len(allele.alt)) <= self.flank + 1

    def ref(self, contig: str, pos: int) -> np.ndarray:
        start = pos - self.flank
        return self.reference.window(contig, start, start + self.span)

    def masked(self, contig: str, pos: int) -> np.ndarray:
        w = self.ref(contig, pos)
        w[self.flank] = MASK
        return w

    def alt(self, allele: Allele) -> np.ndarray:
        c, pos = allele.contig, allele.pos
        left = self.reference.window(c, pos - self.flank, pos)
        right_start = pos + len(allele.ref)
        right = self.reference.window(c, right_start, right_start + self.span - self.flank - len(allele.alt))
        return np.concatenate([left, encode(allele.alt), right])


class VariantScorer:
    def __init__(self, model, reference, window: int, device, batch_size: int = 8,
                 precision: str = "auto", scores=("llr", "emb"), head=None, head_window: int | None = None,
                 pll_flank: int | None = None):
        self.model = model.eval()
        self.head = head.eval() if head is not None else None
        self.windows = Windows(reference, window)
        self.head_windows = Windows(reference, head_window or window) if head is not None else None
        self.device = device
        self.batch_size = batch_size
        self.scores = tuple(scores)
        self.pll_flank = DEFAULTS["pll_flank"] if pll_flank is None else pll_flank
        self.precision = precision
        self.work = WorkCounts()
        self.timer = StageTimer(enabled=False)

    # --- which scores an allele gets --------------------------------------------------
    def wants(self, allele: Allele) -> dict:
        fits = self.windows.fits(allele)
        return {
            "llr": "llr" in self.scores and allele.is_snv,
            "emb": "emb" in self.scores and fits,
            "pll": "pll" in self.scores and fits,
            "head": self.head is not None and self.head_windows.fits(allele),
        }

    def score(self, alleles: list[Allele]) -> list[AlleleScores | None]:
        """Scores for each allele (None where it has a skip reason)."""
        todo = [(i, a, self.wants(a)) for i, a in enumerate(alleles) if a.skip is None]
        out: list[AlleleScores | None] = [None] * len(alleles)
        for i, _, _ in todo:
            out[i] = AlleleScores()
        self._llr([(i, a) for i, a, w in todo if w["llr"]], out)
        if "emb" in self.scores:
            self._emb([(i, a) for i, a, w in todo if w["emb"]], out)
        if "pll" in self.scores:
            self._pll([(i, a) for i, a, w in todo if w["pll"]], out)
        if self.head is not None:
            self._head([(i, a) for i, a, w in todo if w["head"]], out)
        return out

    # --- the three scores -------------------------------------------------------------
    def _llr(self, items, out):
        keys = _unique((a.contig, a.pos) for _, a in items)
        if not keys:
            return
        flank = self.windows.flank
        logp = self._run(keys, lambda k: self.windows.masked(*k), self._center_logp(flank))
        self.work.llr += len(keys)
        row = {k: r for k, r in zip(keys, logp)}
        for i, a in items:
            lp = row[(a.contig, a.pos)]
            out[i].llr = float(lp[encode(a.alt)[0]] - lp[encode(a.ref)[0]])

    def _emb(self, items, out):
        keys = _unique((a.contig, a.pos) for _, a in items)
        if not keys:
            return
        ref_feats = self._run(keys, lambda k: self.windows.ref(*k), self._pooled)
        alt_feats = self._run([a for _, a in items], self.windows.alt, self._pooled)
        self.work.emb += len(keys) + len(items)
        ref_row = {k: r for k, r in zip(keys, ref_feats)}
        for (i, a), alt in zip(items, alt_feats):
            out[i].emb = cosine_distance(ref_row[(a.contig, a.pos)], alt)

    def _pll(self, items, out):
        from genomamba.score.pll import pll_scores

        values, rows = pll_scores(self, [a for _, a in items], self.pll_flank)
        self.work.pll += rows
        for (i, _), value in zip(items, values):
            out[i].pll = value

    def _head(self, items, out):
        keys = _unique((a.contig, a.pos) for _, a in items)
        if not keys:
            return
        w = self.head_windows
        ref_probs = self._run(keys, lambda k: w.ref(*k), self._class_probs)
        alt_probs = self._run([a for _, a in items], w.alt, self._class_probs)
        self.work.head += len(keys) + len(items)
        ref_row = {k: r for k, r in zip(keys, ref_probs)}
        for (i, a), alt in zip(items, alt_probs):
            out[i].head = alt - ref_row[(a.contig, a.pos)]

    # --- forward passes ---------------------------------------------------------------
    def _center_logp(self, flank):
        def fn(ids):
            # float32 from the LM head on (logits_at), whatever the autocast dtype
            logits = self.model.logits_at(ids, flank, rc_average=True)[:, :4]
            return torch.log_softmax(logits, dim=-1)

        return fn

    def _pooled(self, ids):
        if self.model.config.rc_mode == "ps":
            return _mean_pool(self.model.embed(ids), ids)
        both = torch.cat([ids, self.model.backbone.complement[ids.flip(-1)]], dim=0)
        pooled = _mean_pool(self.model.embed(both), both)
        fwd, rev = pooled.chunk(2, dim=0)
        return torch.cat([fwd, rev], dim=-1)

    def _class_probs(self, ids):
        return torch.softmax(self.head(ids, rc_average=True).float(), dim=-1)

    @torch.no_grad()
    def _run(self, specs, build, fn) -> np.ndarray:
        """fn over the windows ``build(spec)``, ``batch_size`` at a time; rows as float64.

        On a GPU the windows go through pinned memory without waiting, and the results stay
        on the device until the last batch, so the next batch is assembled while the GPU
        runs this one."""
        rows = []
        cuda = self.device.type == "cuda"
        timer = self.timer
        for s in range(0, len(specs), self.batch_size):
            with timer("windows"):
                batch = torch.from_numpy(np.stack([build(spec) for spec in specs[s : s + self.batch_size]]))
            with timer("to_device", self.device):
                ids = (batch.pin_memory() if cuda else batch).to(self.device, torch.int64, non_blocking=cuda)
            with timer("forward", self.device), autocast(self.device, self.precision):
                rows.append(fn(ids).float())
        with timer("from_device", self.device):
            return torch.cat(rows).cpu().numpy().astype(np.float64)


class StageTimer:
    """Seconds spent per stage (``with timer("forward", device): ...``), for ``--profile``.
    Enabled, it waits for the GPU at the end of each timed stage so that the time is the
    stage's own (which costs some overlap); disabled, it costs nothing."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str, device=None):
        if not self.enabled:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            if device is not None and device.type == "cuda":
                torch.cuda.synchronize(device)
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


def _mean_pool(hidden: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    keep = (ids != PAD).unsqueeze(-1).to(torch.float32)
    return (hidden.float() * keep).sum(1) / keep.sum(1).clamp(min=1.0)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    if denom == 0:
        return 0.0
    return float(max(0.0, 1.0 - np.dot(a, b) / denom))


def _unique(keys) -> list:
    return list(dict.fromkeys(keys))
