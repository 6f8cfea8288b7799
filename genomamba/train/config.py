"""Pretraining settings: YAML defaults, a user YAML file on top, then dotted overrides.

``load_config(path, overrides)`` starts from the packaged ``configs/pretrain.yaml``,
merges the user's file into it and applies ``section.key=value`` overrides (values are
parsed as YAML: ``32``, ``1e-3``, ``true``, ``[0.9, 0.95]``, ``null``). Every key must
exist in the defaults (``model`` also takes any ``GenoMambaConfig`` field) and keep
its type; anything else is a one-line ``GenomambaError`` naming the file or key.
"""

from __future__ import annotations

import copy
import dataclasses
from importlib import resources
from pathlib import Path

import yaml

from genomamba.errors import GenomambaError

OPEN_SECTIONS = ("model",)  # sections checked against GenoMambaConfig's fields


def default_config() -> dict:
    text = resources.files("genomamba").joinpath("configs/pretrain.yaml").read_text()
    return yaml.safe_load(text)


def model_fields() -> dict[str, object] | None:
    """GenoMambaConfig's fields and defaults, or None while the model package is absent."""
    try:
        from genomamba.model import GenoMambaConfig
    except ImportError:
        return None
    out = {}
    for f in dataclasses.fields(GenoMambaConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
        else:
            out[f.name] = None
    return out


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a mapping"}


def _type_ok(default, value) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _set(cfg: dict, key: str, value, where: str) -> None:
    parts = key.split(".")
    if len(parts) != 2 or not all(parts):
        raise GenomambaError(f"{where}: key {key!r} must be section.name (e.g. train.steps)")
    section, name = parts
    if section not in cfg:
        raise GenomambaError(
            f"{where}: unknown config section {section!r} in {key!r} (known: {', '.join(cfg)})"
        )
    known = cfg[section]
    if name not in known:
        fields = model_fields() if section in OPEN_SECTIONS else None
        if fields is None or name not in fields:
            raise GenomambaError(
                f"{where}: unknown config key {key!r} (known in {section}: {', '.join(sorted(known))})"
            )
        default = None  # GenoMambaConfig checks its own fields' values
    else:
        default = known[name]
    if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
        try:  # YAML 1.1 reads 1e-3 as a string
            value = float(value) if isinstance(default, float) else int(value)
        except ValueError:
            pass
    if not _type_ok(default, value):
        raise GenomambaError(
            f"{where}: {key} must be {_TYPE_NAMES.get(type(default), type(default).__name__)}, got {value!r}"
        )
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    known[name] = value


def merge(cfg: dict, update: dict, where: str) -> dict:
    """Apply a nested ``{section: {key: value}}`` mapping onto ``cfg`` (in place)."""
    if not isinstance(update, dict):
        raise GenomambaError(f"{where}: expected a mapping of sections, got {type(update).__name__}")
    for section, values in update.items():
        if not isinstance(values, dict):
            raise GenomambaError(f"{where}: section {section!r} must be a mapping")
        for name, value in values.items():
            _set(cfg, f"{section}.{name}", value, where)
    return cfg


def parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise GenomambaError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise GenomambaError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f", line {line + 1}" if line is not None else ""
        raise GenomambaError(f"{path}{at}: not valid YAML") from None
    return data or {}


def load_config(path: str | Path | None = None, overrides: list[str] | tuple = (),
                base: dict | None = None) -> dict:
    """Defaults (or ``base``), then the YAML file at ``path``, then ``key=value`` overrides."""
    cfg = copy.deepcopy(base) if base is not None else default_config()
    if path is not None:
        merge(cfg, read_yaml(path), str(path))
    for text in overrides:
        key, value = parse_override(text)
        _set(cfg, key, value, "command line")
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    """Range checks that the type check cannot do."""
    d, m, t = cfg["data"], cfg["mlm"], cfg["train"]
    checks = [
        (d["window"] >= 1, "data.window must be at least 1"),
        (0.0 <= d["max_n_fraction"] <= 1.0, "data.max_n_fraction must be in [0, 1]"),
        (d["rc_augment"] in ("auto", True, False), "data.rc_augment must be auto, true or false"),
        (d["num_workers"] >= 0, "data.num_workers must be >= 0"),
        (0.0 < m["mask_prob"] <= 1.0, "mlm.mask_prob must be in (0, 1]"),
        (m["mask_token"] >= 0 and m["random_token"] >= 0
         and m["mask_token"] + m["random_token"] <= 1.0,
         "mlm.mask_token + mlm.random_token must be in [0, 1]"),
        (m["softmask_weight"] >= 0, "mlm.softmask_weight must be >= 0"),
        (t["steps"] >= 1, "train.steps must be at least 1"),
        (t["batch_size"] >= 1, "train.batch_size must be at least 1"),
        (t["grad_accum"] >= 1, "train.grad_accum must be at least 1"),
        (t["precision"] in ("auto", "bf16", "fp32"), "train.precision must be auto, bf16 or fp32"),
        (len(t["betas"]) == 2, "train.betas must be two numbers"),
        (t["log_every"] >= 1 and t["eval_every"] >= 1 and t["checkpoint_every"] >= 1,
         "train.log_every, eval_every and checkpoint_every must be at least 1"),
        (t["keep_checkpoints"] >= 1, "train.keep_checkpoints must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise GenomambaError(f"config: {message}")
    for i, src in enumerate(d["sources"]):
        if not isinstance(src, dict) or set(src) - {"path", "weight"} or "path" not in src:
            raise GenomambaError(f"config: data.sources[{i}] must be {{path: DIR, weight: W}}")
        if float(src.get("weight", 1.0)) <= 0:
            raise GenomambaError(f"config: data.sources[{i}] weight must be > 0")


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
