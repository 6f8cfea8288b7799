"""The models a score run uses: the masked LM (``--model``: a checkpoint directory, a
pretraining run directory or a training checkpoint, see ``genomamba.model.locate``) and the
optional fine-tuned classifier (``--head``) with its classes and window. ``locate_models``
only reads metadata, so a wrong path is reported before the VCF is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from genomamba.errors import GenomambaError
from genomamba.model.locate import ModelSource, locate_classifier, locate_model

if TYPE_CHECKING:
    from genomamba.score.settings import ScoreSettings


@dataclass
class Models:
    model: ModelSource
    head: ModelSource | None = None


def locate_models(s: ScoreSettings) -> Models:
    return Models(locate_model(s.model), locate_classifier(s.head) if s.head else None)


def load_models(s: ScoreSettings, found: Models, device):
    """(masked LM, classifier or None, its classes or None, its window or None), on ``device``."""
    model = found.model.load(device)
    head, classes, head_window = None, None, s.head_window
    if found.head is not None:
        head = found.head.load(device)
        classes = found.head.labels["classes"]
        if len(classes) != head.num_labels:
            raise GenomambaError(f"{s.head}: labels.json lists {len(classes)} classes, the model has {head.num_labels}")
        head_window = head_window or int(found.head.labels.get("sequence_length") or s.window)
    return model, head, classes, head_window
