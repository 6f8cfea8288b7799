"""Loading the models a score run uses: the masked-LM checkpoint (``--model``) and the
optional fine-tuned classifier (``--head``) with its classes and window."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from genomamba.errors import GenomambaError

if TYPE_CHECKING:
    from genomamba.score.settings import ScoreSettings


def load_models(s: ScoreSettings, device):
    from genomamba.model import GenoMambaForMaskedLM, GenoMambaForSequenceClassification

    config_path = os.path.join(s.model, "config.json")
    try:
        with open(config_path) as fh:
            task = json.load(fh).get("task")
    except (OSError, json.JSONDecodeError):
        task = None  # from_pretrained reports what is wrong with the directory
    if task not in (None, GenoMambaForMaskedLM.task):
        raise GenomambaError(
            f"{s.model}: a {task} checkpoint; --model needs a masked-LM checkpoint (pretraining output), "
            "a fine-tuned classifier goes to --head")
    model = GenoMambaForMaskedLM.from_pretrained(s.model).to(device).eval()
    head, classes, head_window = None, None, s.head_window
    if s.head:
        from genomamba.model.labels import read_labels

        labels = read_labels(s.head)
        head = GenoMambaForSequenceClassification.from_pretrained(labels["model_dir"]).to(device).eval()
        classes = labels["classes"]
        if len(classes) != head.num_labels:
            raise GenomambaError(f"{s.head}: labels.json lists {len(classes)} classes, the model has {head.num_labels}")
        head_window = head_window or int(labels.get("sequence_length") or s.window)
    return model, head, classes, head_window
