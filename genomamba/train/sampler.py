"""Seeded, resumable sampling of fixed-length MLM windows from tokenized genomes.

Batch ``b`` of process ``rank`` is a pure function of ``(seed, rank, split, b)``: its
random generator is seeded from those four numbers, so the windows, strands and
masks do not depend on worker count or timing, each rank sees different windows,
and resuming only needs the next batch index.

Each window: pick a source (genome) by weight, an interval of the split with
probability proportional to its length, then a uniform start. Intervals shorter than
the window are taken whole and padded on the right with [PAD] (never a target, so the
loss ignores it); intervals shorter than ``min(data.min_interval, window)`` are not
used. A window whose fraction of N (over its real bases) exceeds ``max_n_fraction``
is drawn again. With RC augmentation the strand is random.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genomamba.data import PAD
from genomamba.errors import GenomambaError
from genomamba.train.masking import mask_tokens

SPLITS = {"train": 0, "val": 1, "test": 2}
MAX_DRAWS = 64  # redraws of a window with too many N before giving up


def open_genome(path: str | Path):
    from genomamba.data import Genome

    try:
        return Genome(path)
    except GenomambaError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise GenomambaError(f"{path}: cannot read tokenized genome ({exc})") from None


@dataclass
class Source:
    path: str
    weight: float
    contigs: list          # contig name per interval
    starts: np.ndarray     # int64
    ends: np.ndarray       # int64
    cum: np.ndarray        # cumulative interval-length probabilities


def read_source(path: str, weight: float, split: str, window: int, min_interval: int) -> Source | None:
    """Intervals of ``split`` usable for windows, or None when the split has none."""
    genome = open_genome(path)
    try:
        intervals = list(genome.intervals(split))
    finally:
        close = getattr(genome, "close", None)
        if close is not None:
            close()
    shortest = min(min_interval, window)
    kept = [(c, int(s), int(e)) for c, s, e in intervals if int(e) - int(s) >= shortest]
    if not kept:
        return None
    lengths = np.array([e - s for _, s, e in kept], dtype=np.float64)
    return Source(
        path=str(path), weight=float(weight), contigs=[c for c, _, _ in kept],
        starts=np.array([s for _, s, _ in kept], dtype=np.int64),
        ends=np.array([e for _, _, e in kept], dtype=np.int64),
        cum=np.cumsum(lengths) / lengths.sum(),
    )


@dataclass(frozen=True)
class SamplerSettings:
    """What a ``WindowSampler`` reads from the config (see ``sampler_settings``)."""
    window: int
    batch_size: int
    seed: int
    min_interval: int
    max_n_fraction: float
    mask_prob: float
    mask_token: float
    random_token: float
    softmask_weight: float


def sampler_settings(cfg: dict) -> SamplerSettings:
    """The sampler's settings from a pretraining config (sections data, train and mlm)."""
    data, train, mlm = cfg["data"], cfg["train"], cfg["mlm"]
    return SamplerSettings(
        window=int(data["window"]), batch_size=int(train["batch_size"]), seed=int(train["seed"]),
        min_interval=int(data["min_interval"]), max_n_fraction=float(data["max_n_fraction"]),
        mask_prob=mlm["mask_prob"], mask_token=mlm["mask_token"],
        random_token=mlm["random_token"], softmask_weight=mlm["softmask_weight"],
    )


class WindowSampler:
    """Makes MLM batches of one split; ``batch(b)`` is deterministic in (seed, rank, b)."""

    def __init__(self, sources: list[dict], split: str, settings: SamplerSettings, rank: int = 0,
                 rc_augment: bool = False):
        self.settings = settings
        self.split = split
        self.window = settings.window
        self.max_n_fraction = settings.max_n_fraction
        self.batch_size = settings.batch_size
        self.seed = settings.seed
        self.rank = rank
        self.rc_augment = rc_augment
        if not sources:
            raise GenomambaError("no training data: pass --data DIR or set data.sources")
        self.sources = []
        for src in sources:
            s = read_source(src["path"], src.get("weight", 1.0), split, self.window,
                            settings.min_interval)
            if s is not None:
                self.sources.append(s)
        weights = np.array([s.weight for s in self.sources], dtype=np.float64)
        self.source_cum = np.cumsum(weights) / weights.sum() if len(weights) else weights
        self._genomes: dict = {}  # opened on first use; Genome reopens its files in a new process

    def __len__(self) -> int:  # number of usable sources
        return len(self.sources)

    def _genome(self, i: int):
        if i not in self._genomes:
            self._genomes[i] = open_genome(self.sources[i].path)
        return self._genomes[i]

    def _draw(self, rng: np.random.Generator):
        si = int(np.searchsorted(self.source_cum, rng.random(), side="right"))
        si = min(si, len(self.sources) - 1)
        src = self.sources[si]
        k = min(int(np.searchsorted(src.cum, rng.random(), side="right")), len(src.cum) - 1)
        start, end = int(src.starts[k]), int(src.ends[k])
        if end - start > self.window:
            start = start + int(rng.integers(0, end - start - self.window + 1))
        end = min(end, start + self.window)
        strand = "-" if self.rc_augment and rng.random() < 0.5 else "+"
        return si, src.contigs[k], start, end, strand

    def window_at(self, rng: np.random.Generator):
        """One window: (tokens uint8 (window,), softmask bool (window,), (source, contig, start, end, strand))."""
        for _ in range(MAX_DRAWS):
            si, contig, start, end, strand = self._draw(rng)
            genome = self._genome(si)
            tokens = np.asarray(genome.fetch(contig, start, end, strand=strand), dtype=np.uint8)
            if tokens.size and np.count_nonzero(tokens == 4) <= self.max_n_fraction * tokens.size:
                break
        else:
            raise GenomambaError(
                f"{self.sources[si].path}: no {self.split} window with at most "
                f"{self.max_n_fraction:.0%} N in {MAX_DRAWS} draws; raise data.max_n_fraction"
            )
        soft = np.asarray(genome.softmask(contig, start, end), dtype=bool)
        if strand == "-":
            soft = soft[::-1]
        n = tokens.size
        out_t = np.full(self.window, PAD, dtype=np.uint8)
        out_s = np.zeros(self.window, dtype=bool)
        out_t[:n], out_s[:n] = tokens, soft
        return out_t, out_s, (si, contig, start, end, strand)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.rank, SPLITS.get(self.split, 9), int(index)])

    def batch(self, index: int) -> dict:
        """Micro-batch ``index``: input_ids, labels (int64), weights (float32), all (batch, window)."""
        rng = self.rng(index)
        tokens = np.empty((self.batch_size, self.window), dtype=np.uint8)
        soft = np.empty((self.batch_size, self.window), dtype=bool)
        for i in range(self.batch_size):
            tokens[i], soft[i], _ = self.window_at(rng)
        m = self.settings
        inputs, labels, weights = mask_tokens(
            tokens, soft, rng, m.mask_prob, m.mask_token, m.random_token, m.softmask_weight
        )
        return {"input_ids": inputs, "labels": labels, "weights": weights}


class BatchDataset:
    """Map-style dataset over batch indices, for a DataLoader with ``batch_size=None``."""

    def __init__(self, sampler: WindowSampler):
        self.sampler = sampler

    def __getitem__(self, index: int):
        import torch

        try:
            return {k: torch.from_numpy(v) for k, v in self.sampler.batch(index).items()}
        except GenomambaError as exc:  # keep the message one line across the worker boundary
            raise RuntimeError(f"GenomambaError: {exc}") from None


class CountFrom:
    """Batch indices start, start+1, ... (endless): the DataLoader's sampler."""

    def __init__(self, start: int):
        self.start = start

    def __iter__(self):
        i = self.start
        while True:
            yield i
            i += 1


def make_loader(sampler: WindowSampler, start: int, num_workers: int, prefetch: int,
                pin_memory: bool = False):
    """A background loader yielding batches start, start+1, ... in order (``num_workers``
    processes each keep ``prefetch`` batches ready; 0 reads in the training process)."""
    import torch
    from torch.utils.data import DataLoader

    kwargs = {"prefetch_factor": max(1, prefetch)} if num_workers > 0 else {}
    # a generator of its own: an iterator's seed drawn from torch's global one would leave a
    # resumed run's RNG state (saved in its checkpoints) one draw ahead of an uninterrupted run's
    return DataLoader(BatchDataset(sampler), batch_size=None, sampler=CountFrom(start),
                      num_workers=num_workers, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(0), **kwargs)


def next_batch(iterator):
    """``next(iterator)``, turning a worker's GenomambaError back into a one-line one."""
    try:
        return next(iterator)
    except RuntimeError as exc:
        text = str(exc)
        marker = "GenomambaError: "
        # the worker's own line is the last: the traceback above it shows the source line that
        # raised it, which holds the marker too
        last = text.strip().splitlines()[-1] if text.strip() else ""
        if marker in last:
            raise GenomambaError(last.split(marker, 1)[1].strip()) from None
        raise
