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
    pll_flank: int = DEFAULTS["pll_flank"]
    skip_ref_mismatch: bool = DEFAULTS["skip_ref_mismatch"]
    device: str = DEFAULTS["device"]
    precision: str = DEFAULTS["precision"]
    profile: bool = DEFAULTS["profile"]

    def check(self, model=None):
        """Check the values; ``model`` (a located ``ModelSource``) gives the default window."""
        from genomamba.score.engine import SCORES

        if isinstance(self.scores, str):
            self.scores = tuple(x.strip() for x in self.scores.split(",") if x.strip())
        self.scores = tuple(self.scores)
        if self.window is None:
            self.window = pretraining_window(model)
        elif model is not None and model.window and self.window > model.window:
            print(f"score: warning: window {self.window} is longer than the {model.window} bases {model.path} "
                  "was trained on; its scores there are untested", file=sys.stderr)
        if self.window < 1 or (self.head_window is not None and self.head_window < 1):
            raise GenomambaError("window and head_window must be at least 1")
        # batch_size None: default_batch_size(window, device), set once the device is known
        if (self.batch_size is not None and self.batch_size < 1) or self.chunk_size < 1:
            raise GenomambaError("batch_size and chunk_size must be at least 1")
        if isinstance(self.pll_flank, bool) or not isinstance(self.pll_flank, int) or self.pll_flank < 0:
            raise GenomambaError(f"pll_flank must be an integer of at least 0, got {self.pll_flank!r}")
        bad = [s for s in self.scores if s not in SCORES]
        if bad or (not self.scores and not self.head):
            raise GenomambaError(f"scores takes a subset of {', '.join(SCORES)}, got {list(self.scores)!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise GenomambaError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")


def pretraining_window(model) -> int:
    """The window ``model`` (a ``ModelSource``) was pretrained on, as its checkpoint records
    it, or FALLBACK_WINDOW for one that does not; says which on stderr."""
    if model is not None and model.window:
        print(f"score: window {model.window} bases, the model's pretraining window (set window= to change it)",
              file=sys.stderr)
        return model.window
    where = model.path if model is not None else "the model"
    print(f"score: window {FALLBACK_WINDOW} bases ({where} does not record its pretraining window)",
          file=sys.stderr)
    return FALLBACK_WINDOW


def default_batch_size(window: int, device=None) -> int:
    """Windows per forward pass: ``genomamba.device.inference_batch``."""
    from genomamba.device import inference_batch

    return inference_batch(window, device)
