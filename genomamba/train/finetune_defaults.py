"""The choices and per-mode defaults of ``genomamba finetune``, without torch, so that
building the command line (``genomamba --help``) stays fast. The other defaults are in
``genomamba/configs/finetune.yaml``."""

from __future__ import annotations

from genomamba import settings

MODES = ("probe", "full")
METRICS = ("mcc", "auroc", "accuracy", "macro_f1")
POOLINGS = ("mean", "max", "center", "mean_center", "attention")  # as genomamba.model.pooling.POOLINGS
DEFAULT_LR = {"probe": 1e-2, "full": 5e-4}
DEFAULT_EPOCHS = {"probe": 200, "full": 10}  # a probe epoch is a pass over cached features
DEFAULT_PATIENCE = {"probe": 20, "full": 3}

DEFAULTS = settings.packaged("finetune")  # every default of FinetuneSettings
