"""The settings of ``genomamba score``: the ``ScoreSettings`` dataclass, whose defaults are
read from ``genomamba/configs/score.yaml``, and the defaults worked out from the model
(its pretraining window) and the window (the batch size)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from genomamba.settings import packaged
from genomamba.errors import GenomambaError

DEFAULTS = packaged("score")  # every default of the settings below
FALLBACK_WINDOW = 1024  # for checkpoints that do not record their pretraining window


@dataclass
class ScoreSettings:
    model: str
    reference: str
    vcf: str
    out: str
    head: str | None = None
    window: int | None = DEFAULTS["window"]  # None: the model's pretraining window
    head_window: int | None = DEFAULTS["head_window"]
    scores: tuple = tuple(DEFAULTS["scores"])
    batch_size: int | None = DEFAULTS["batch_size"]  # None: default_batch_size(window)
    chunk_size: int = DEFAULTS["chunk_size"]
    skip_ref_mismatch: bool = DEFAULTS["skip_ref_mismatch"]
    device: str = DEFAULTS["device"]
    precision: str = DEFAULTS["precision"]

    def check(self):
        from genomamba.score.engine import SCORES

        if isinstance(self.scores, str):
            self.scores = tuple(x.strip() for x in self.scores.split(",") if x.strip())
        self.scores = tuple(self.scores)
        if self.window is None:
            self.window = pretraining_window(self.model)
        if self.window < 1 or (self.head_window is not None and self.head_window < 1):
            raise GenomambaError("window and head_window must be at least 1")
        if self.batch_size is None:
            self.batch_size = default_batch_size(self.window)
        if self.batch_size < 1 or self.chunk_size < 1:
            raise GenomambaError("batch_size and chunk_size must be at least 1")
        bad = [s for s in self.scores if s not in SCORES]
        if bad or (not self.scores and not self.head):
            raise GenomambaError(f"scores takes a subset of {', '.join(SCORES)}, got {list(self.scores)!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise GenomambaError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")


def pretraining_window(model_dir) -> int:
    """The window the model was pretrained on (its config.json's ``training.window``), or
    FALLBACK_WINDOW for a checkpoint that does not record it; says which on stderr."""
    from genomamba.model.io import read_meta

    training = read_meta(model_dir).get("training")
    window = training.get("window") if isinstance(training, dict) else None
    if isinstance(window, int) and not isinstance(window, bool) and window >= 1:
        print(f"score: window {window} bases, the model's pretraining window (set window= to change it)",
              file=sys.stderr)
        return window
    print(f"score: window {FALLBACK_WINDOW} bases ({model_dir} does not record its pretraining window)",
          file=sys.stderr)
    return FALLBACK_WINDOW


def default_batch_size(window: int) -> int:
    """About 64k bases per forward pass: 64 windows of 1k, 4 of 16k, 1 of 131k."""
    return max(1, min(64, 65536 // window))
