"""Checkpoint directories: ``model.safetensors`` + ``config.json`` + ``vocab.json``.

config.json::

    {"format_version": 1, "model_type": "genomamba", "task": "masked_lm" | "sequence_classification",
     "head": {...task options...}, "config": {...every GenoMambaConfig field...},
     "weights_sha256": "<hex digest of model.safetensors>"}

vocab.json: ``{"format_version": 1, "tokens": ["A", "C", "G", "T", "N", "[PAD]", "[MASK]"]}``.

Writes are atomic (``genomamba.files.atomic_dir``): a reader sees the old checkpoint,
the new one or none, never half of one. config.json may also hold ``"training"``
(e.g. ``{"window": 512}``: the pretraining window, the default window of ``score``).
Every problem found while reading raises ``GenomambaError`` naming the directory and
what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from genomamba.data.vocab import VOCAB
from genomamba.errors import GenomambaError
from genomamba.files import atomic_dir, write_bytes

FORMAT_VERSION = 1
#: format versions this version of genomamba reads (older ones: none exist yet)
READABLE_VERSIONS = (1,)
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
MODEL_TYPE = "genomamba"


def save_checkpoint(directory, state_dict: dict, config: dict, task: str, head: dict,
                    training: dict | None = None, extra_files: dict | None = None) -> Path:
    """Write a checkpoint directory atomically; returns its path.

    ``training``: how the model was trained (e.g. ``{"window": 131072}``), recorded in
    config.json for the commands that default to it; ``extra_files``: more files to put in
    the directory (name -> value: JSON, or ``bytes`` written as they are), e.g. a
    classifier's ``labels.json``."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise GenomambaError(f"{directory}: exists and is not a directory")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / CONFIG_FILE).is_file():
        raise GenomambaError(
            f"{directory}: refusing to overwrite a non-empty directory that is not a genomamba checkpoint")

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    weights = save_safetensors(tensors, metadata={"format_version": str(FORMAT_VERSION)})
    meta = {
        "format_version": FORMAT_VERSION,
        "model_type": MODEL_TYPE,
        "task": task,
        "head": head,
        "config": config,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    if training:
        meta["training"] = training
    vocab = {"format_version": FORMAT_VERSION, "tokens": list(VOCAB)}
    files = {CONFIG_FILE: meta, VOCAB_FILE: vocab, **(extra_files or {})}
    with atomic_dir(directory, fsync=True) as tmp:
        write_bytes(tmp / WEIGHTS_FILE, weights, fsync=True)
        for name, value in files.items():
            data = value if isinstance(value, bytes) else (json.dumps(value, indent=2) + "\n").encode()
            write_bytes(tmp / name, data, fsync=True)
    return directory


def read_meta(directory) -> dict:
    """config.json of a checkpoint directory, unchecked beyond being a JSON object."""
    return _read_json(Path(directory), CONFIG_FILE)


def load_checkpoint(directory, device="cpu"):
    """Read and check a checkpoint directory.

    Returns ``(config_dict, task, head, state_dict)``; the config dict is not yet
    validated as a ``GenoMambaConfig`` (the caller does that, with overrides)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GenomambaError(f"{directory}: no such checkpoint directory")
    meta = _read_json(directory, CONFIG_FILE)
    version = meta.get("format_version")
    if version is None:
        raise GenomambaError(
            f"{directory / CONFIG_FILE}: no format_version; not a genomamba checkpoint "
            f"(genomamba checkpoints carry format_version since format 1)")
    if not isinstance(version, int) or isinstance(version, bool):
        raise GenomambaError(f"{directory / CONFIG_FILE}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise GenomambaError(
            f"{directory}: checkpoint format {version} was written by a newer genomamba; "
            f"this version reads format(s) {', '.join(map(str, READABLE_VERSIONS))}: upgrade genomamba")
    if version not in READABLE_VERSIONS:
        raise GenomambaError(
            f"{directory}: checkpoint format {version} is not readable by this version "
            f"(reads format(s) {', '.join(map(str, READABLE_VERSIONS))}); re-export it with the "
            f"genomamba version that wrote it")
    if meta.get("model_type") != MODEL_TYPE:
        raise GenomambaError(f"{directory / CONFIG_FILE}: model_type is {meta.get('model_type')!r}, expected {MODEL_TYPE!r}")
    for key in ("task", "head", "config", "weights_sha256"):
        if key not in meta:
            raise GenomambaError(f"{directory / CONFIG_FILE}: missing {key!r}")

    vocab = _read_json(directory, VOCAB_FILE)
    tokens = vocab.get("tokens")
    if tokens != list(VOCAB):
        raise GenomambaError(
            f"{directory / VOCAB_FILE}: vocabulary {tokens!r} differs from this version's {list(VOCAB)!r}")

    path = directory / WEIGHTS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GenomambaError(f"{path}: missing weights file") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta["weights_sha256"]:
        raise GenomambaError(
            f"{path}: checksum mismatch (sha256 {digest[:12]}..., config.json records "
            f"{str(meta['weights_sha256'])[:12]}...): the file is corrupt, truncated or from another checkpoint")
    try:
        state = load_safetensors(data)
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise GenomambaError(f"{path}: cannot read weights ({exc})") from None
    if device is not None and str(device) != "cpu":
        state = {k: v.to(device) for k, v in state.items()}
    return meta["config"], meta["task"], meta["head"], state


def load_state_into(model: torch.nn.Module, state: dict, source, required_prefixes=None):
    """Copy ``state`` into ``model`` exactly (same keys, same shapes).

    ``required_prefixes``: when given, only model keys with one of these prefixes must be
    in ``state`` (the others, e.g. a new task head, keep their initialisation) and keys of
    ``state`` without one of them are ignored (e.g. another task's head). Returns the
    model keys left at their initialisation."""
    own = model.state_dict()

    def wanted(key):
        return required_prefixes is None or key.startswith(tuple(required_prefixes))

    missing = sorted(k for k in own if wanted(k) and k not in state)
    unexpected = sorted(k for k in state if wanted(k) and k not in own)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing weights {_some(missing)}")
        if unexpected:
            parts.append(f"unexpected weights {_some(unexpected)}")
        raise GenomambaError(
            f"{source}: checkpoint does not match the model built from its config.json: " + "; ".join(parts))
    reshaped = [f"{key} has shape {tuple(state[key].shape)} in the checkpoint but {tuple(target.shape)}"
                for key, target in own.items()
                if wanted(key) and tuple(state[key].shape) != tuple(target.shape)]
    if reshaped:
        raise GenomambaError(
            f"{source}: weight {_some(reshaped, limit=3, sep='; ')} in the model built from its config.json")
    with torch.no_grad():
        for key, target in own.items():
            if key in state and wanted(key):
                target.copy_(state[key])
    return sorted(k for k in own if not wanted(k))


def _some(items, limit=5, sep=", "):
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return sep.join(items[:limit]) + more


def _read_json(directory: Path, name: str) -> dict:
    path = directory / name
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise GenomambaError(f"{path}: missing; not a genomamba checkpoint directory") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenomambaError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(value, dict):
        raise GenomambaError(f"{path}: expected a JSON object")
    return value
