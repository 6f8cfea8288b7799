"""Fine-tuned classifier directories: a checkpoint (``save_pretrained``) plus ``labels.json``.

``labels.json``: ``{"classes": [...], "sequence_length": N, "mode": ..., "pooling": ...}``
(``sequence_length``: the median training length; ``genomamba score --head`` uses it as its
window). ``read_labels`` accepts the model directory or the ``genomamba finetune`` output
directory above it.
"""

from __future__ import annotations

import json
import os

from genomamba.errors import GenomambaError

LABELS_FILE = "labels.json"


def save_classifier(directory, clf, classes, sequence_length: int, mode: str) -> None:
    """Write the classifier and its labels.json as one atomic directory."""
    labels = {"classes": list(classes), "sequence_length": int(sequence_length), "mode": mode,
              "pooling": clf.pooling}
    clf.save_pretrained(directory, extra_files={LABELS_FILE: labels})


def read_labels(directory) -> dict:
    """``labels.json`` of a fine-tuned model directory (or of ``DIR/model``), with
    ``model_dir``: the checkpoint directory it belongs to."""
    path = os.path.join(directory, LABELS_FILE)
    if not os.path.exists(path) and os.path.exists(os.path.join(directory, "model", LABELS_FILE)):
        path = os.path.join(directory, "model", LABELS_FILE)
    try:
        with open(path) as fh:
            labels = json.load(fh)
    except FileNotFoundError:
        raise GenomambaError(f"{directory}: no {LABELS_FILE}; not a `genomamba finetune` model directory") from None
    except json.JSONDecodeError as exc:
        raise GenomambaError(f"{path}: not valid JSON (line {exc.lineno})") from None
    if not isinstance(labels, dict) or not isinstance(labels.get("classes"), list) or not labels["classes"]:
        raise GenomambaError(f"{path}: missing the list of classes")
    return {**labels, "model_dir": os.path.dirname(path)}
