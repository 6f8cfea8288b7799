"""Which model a path names: ``--model`` and ``--head`` resolved the same way by every command.

``locate_model(path)`` accepts, for a pretrained masked LM:

- a checkpoint directory (``save_pretrained``: ``config.json`` + ``model.safetensors``);
- a pretraining run directory (``genomamba pretrain --out RUN``): its ``RUN/model``; a run
  that has not finished is an error naming its newest checkpoint;
- a training checkpoint (``RUN/checkpoints/step-N.pt``): its model weights, read with
  ``torch.load(weights_only=True)`` (no code runs) into a model built from the settings
  saved in it.

``locate_classifier(path)`` accepts a ``genomamba finetune --out`` directory or its
``model/`` (a classifier checkpoint with ``labels.json``).

Both only read metadata (JSON; a ``.pt`` file is read whole) and fail with one line
naming the path and what to give instead, so a command can check its models before it
reads any data; ``ModelSource.load(device)`` then builds the model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from genomamba.errors import GenomambaError

CONFIG_FILE = "config.json"
LABELS_FILE = "labels.json"
MASKED_LM, CLASSIFIER = "masked_lm", "sequence_classification"
#: what a training checkpoint (``genomamba.train.checkpoint``) must hold to give a model
CHECKPOINT_KEYS = ("model", "config")
_GIVE = ("give a checkpoint directory (config.json + model.safetensors, e.g. RUN/model), "
         "a pretraining run directory or a training checkpoint RUN/checkpoints/step-N.pt")


@dataclass
class ModelSource:
    """A located model. ``directory``: its checkpoint directory (None for a training
    checkpoint, whose file is ``checkpoint``); ``sha256``: the weights' digest recorded in
    config.json (for a training checkpoint: the digest of the ``.pt`` file)."""

    given: str
    task: str
    directory: str | None = None
    checkpoint: str | None = None
    sha256: str | None = None
    training: dict = field(default_factory=dict)  # e.g. {"window": 512}
    labels: dict | None = None  # classifiers: labels.json
    _state: dict | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        """The file or directory the weights come from."""
        return self.directory or self.checkpoint

    @property
    def window(self) -> int | None:
        """The pretraining window, where the checkpoint records one."""
        w = self.training.get("window")
        return w if isinstance(w, int) and not isinstance(w, bool) and w >= 1 else None

    def load(self, device="cpu"):
        """The model, on ``device``, in eval mode."""
        from genomamba.model import GenoMambaForMaskedLM, GenoMambaForSequenceClassification

        if self.task == CLASSIFIER:
            return GenoMambaForSequenceClassification.from_pretrained(self.directory).to(device).eval()
        if self.directory is not None:
            return GenoMambaForMaskedLM.from_pretrained(self.directory).to(device).eval()
        return _model_from_training_state(self._state, self.checkpoint).to(device).eval()


def locate_model(path, flag: str = "--model") -> ModelSource:
    """A pretrained masked-LM, from any of the paths in the module docstring."""
    path = os.fspath(path)
    if os.path.isfile(path):
        if os.path.basename(path) == CONFIG_FILE:
            path = os.path.dirname(path) or "."
        else:
            return _training_checkpoint(path, flag)
    if not os.path.exists(path):
        raise GenomambaError(f"{path}: no such file or directory ({flag}: {_GIVE})")
    directory = _checkpoint_dir(path, flag)
    meta = _read_config(directory)
    task = meta.get("task")
    if task == CLASSIFIER:
        raise GenomambaError(f"{path}: a fine-tuned classifier; {flag} needs a pretrained masked-LM "
                             "checkpoint (a classifier goes to --head)")
    if task != MASKED_LM:
        raise GenomambaError(f"{os.path.join(directory, CONFIG_FILE)}: unknown task {task!r}; not a "
                             "genomamba masked-LM checkpoint")
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    return ModelSource(path, task, directory=directory, sha256=meta.get("weights_sha256"), training=training)


def locate_classifier(path, flag: str = "--head") -> ModelSource:
    """A fine-tuned classifier: a ``genomamba finetune`` output directory or its ``model/``."""
    from genomamba.model.labels import read_labels

    path = os.fspath(path)
    if not os.path.isdir(path):
        what = "is not a directory" if os.path.exists(path) else "no such directory"
        raise GenomambaError(f"{path}: {what} ({flag}: give a `genomamba finetune --out` directory)")
    labels = read_labels(path)
    directory = labels["model_dir"]
    meta = _read_config(directory)
    if meta.get("task") != CLASSIFIER:
        raise GenomambaError(f"{directory}: a {meta.get('task')} checkpoint, not a fine-tuned classifier ({flag})")
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    return ModelSource(path, CLASSIFIER, directory=directory, sha256=meta.get("weights_sha256"),
                       training=training, labels=labels)


# ---- the pieces ----------------------------------------------------------------------------

def _checkpoint_dir(path: str, flag: str) -> str:
    """``path`` itself when it holds config.json, else a run's ``model/``."""
    if os.path.isfile(os.path.join(path, CONFIG_FILE)):
        return path
    model = os.path.join(path, "model")
    if os.path.isfile(os.path.join(model, CONFIG_FILE)):
        return model
    newest = _newest_checkpoint(path)
    if newest:
        raise GenomambaError(f"{path}: this pretraining run has not finished (no {model}); {flag}: give one "
                             f"of its checkpoints, e.g. {newest}, or finish it with --resume")
    raise GenomambaError(f"{path}: not a genomamba model directory (no {CONFIG_FILE}); {flag}: {_GIVE}")


def _newest_checkpoint(run_dir: str) -> str | None:
    folder = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(folder):
        return None
    found = sorted(p for p in os.listdir(folder) if p.startswith("step-") and p.endswith(".pt"))
    return os.path.join(folder, found[-1]) if found else None


def _read_config(directory: str) -> dict:
    path = os.path.join(directory, CONFIG_FILE)
    try:
        with open(path) as fh:
            meta = json.load(fh)
    except json.JSONDecodeError as exc:
        raise GenomambaError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except OSError as exc:
        raise GenomambaError(f"{path}: cannot read ({exc.strerror})") from None
    if not isinstance(meta, dict):
        raise GenomambaError(f"{path}: expected a JSON object")
    return meta


def _training_checkpoint(path: str, flag: str) -> ModelSource:
    if not path.endswith(".pt"):
        raise GenomambaError(f"{path}: a file, but not a training checkpoint (.pt); {flag}: {_GIVE}")
    state = load_weights_only(path)
    if not isinstance(state, dict) or any(k not in state for k in CHECKPOINT_KEYS) \
            or not isinstance(state["config"], dict) or not isinstance(state["config"].get("model"), dict):
        raise GenomambaError(f"{path}: not a genomamba training checkpoint (no model weights and settings); "
                             f"{flag}: {_GIVE}")
    window = (state["config"].get("data") or {}).get("window")
    return ModelSource(path, MASKED_LM, checkpoint=path, sha256=_sha256(path),
                       training={"window": window} if window else {},
                       _state={"model": state["model"], "config": state["config"]})  # not the optimiser


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights_only(path, problem: str = "cannot read as a training checkpoint") -> dict:
    """``torch.load(weights_only=True)``: tensors and plain containers only, so no code in the
    file runs (a checkpoint copied from someone else cannot act as the user). A file that
    needs more (any other pickled object, e.g. a numpy array) is refused like a corrupt one:
    ``GenomambaError("<path>: <problem> (<reason>)")``."""
    import torch

    _check_zip_crc(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, a pickle that needs code, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenomambaError(f"{path}: {problem} ({reason[:200]})") from None


def _check_zip_crc(path) -> None:
    """torch.save writes a zip archive with a CRC-32 for every record (the tensors too), but
    torch.load never checks them, so bytes flipped in a tensor would load as wrong weights.
    Check them all first (about 1 s per GB). Not a zip (an old-format pickle): torch.load
    decides."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        if zipfile.is_zipfile(path):
            raise GenomambaError(f"{path}: the checkpoint is corrupt or truncated ({exc})") from None
        return
    if bad is not None:
        raise GenomambaError(f"{path}: the checkpoint is corrupt: record {bad.split('/', 1)[-1]} does not match "
                             "its CRC-32 (damaged on disk or in a copy; use another checkpoint)")


def _model_from_training_state(state: dict, path: str):
    from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM
    from genomamba.model.io import load_state_into

    try:
        config = GenoMambaConfig(**state["config"]["model"])
    except (TypeError, ValueError, GenomambaError) as exc:
        raise GenomambaError(f"{path}: bad model settings in the checkpoint ({exc})") from None
    model = GenoMambaForMaskedLM(config)
    weights = {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in state["model"].items()}
    load_state_into(model, weights, path)
    return model
