"""The settings of ``genomamba track`` (``TrackSettings``; defaults from
``genomamba/configs/track.yaml``) and their checks."""

from __future__ import annotations

from dataclasses import dataclass

from genomamba.errors import GenomambaError
from genomamba.settings import check_number, packaged

DEFAULTS = packaged("track")
SCORES = ("min-llr", "mean-llr", "entropy", "ref-logp")
FALLBACK_WINDOW = 1024  # for checkpoints that do not record their pretraining window
BIGWIG_SUFFIXES = (".bw", ".bigwig", ".bigWig")


@dataclass
class TrackSettings:
    model: str
    reference: str
    out: str
    regions: str | None = None
    all_alts: str | None = None
    score: str = DEFAULTS["score"]
    window: int | None = DEFAULTS["window"]  # None: the model's pretraining window
    batch_size: int | None = DEFAULTS["batch_size"]  # None: default_batch_size(window)
    part_size: int = DEFAULTS["part_size"]
    device: str = DEFAULTS["device"]
    precision: str = DEFAULTS["precision"]
    masks_per_window: int = DEFAULTS["masks_per_window"]  # 1: exact; K > 1: the approximate mode
    mask_spacing: int = DEFAULTS["mask_spacing"]
    agreement_sample: int = DEFAULTS["agreement_sample"]

    def check(self, model_window: int | None = None) -> None:
        """Check the values; ``model_window``: the model's pretraining window (the default)."""
        if self.score not in SCORES:
            raise GenomambaError(f"score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if not self.out.endswith(BIGWIG_SUFFIXES):
            raise GenomambaError(f"{self.out}: --out must end in .bw or .bigwig")
        if self.all_alts is not None and not self.all_alts.endswith(".tsv.gz"):
            raise GenomambaError(f"{self.all_alts}: --all-alts must end in .tsv.gz (bgzipped, tabix-indexed)")
        if self.window is None:
            self.window = model_window or FALLBACK_WINDOW
        check_number("window", self.window, integer=True, minimum=1)
        if self.batch_size is not None:  # None: genomamba.device.inference_batch, once the device is known
            check_number("batch_size", self.batch_size, integer=True, minimum=1)
        check_number("part_size", self.part_size, integer=True, minimum=1)
        check_number("masks_per_window", self.masks_per_window, integer=True, minimum=1)
        check_number("mask_spacing", self.mask_spacing, integer=True, minimum=1)
        check_number("agreement_sample", self.agreement_sample, integer=True, minimum=0)
        reach = (self.masks_per_window // 2) * self.mask_spacing  # farthest mask from a window's middle
        if self.masks_per_window > 1 and reach > (self.window - 1) // 2:
            raise GenomambaError(f"masks_per_window {self.masks_per_window} x mask_spacing {self.mask_spacing} "
                                 f"does not fit in a window of {self.window}: the masks would reach {reach} "
                                 f"bases from its middle, past its flank of {(self.window - 1) // 2}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise GenomambaError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
