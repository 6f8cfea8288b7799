"""Pretraining settings: ``genomamba.settings`` layering on ``configs/pretrain.yaml``.

``load_config(path, overrides)`` starts from the packaged defaults, merges the user's
file and applies ``section.key=value`` overrides; the ``model`` section also takes any
``GenoMambaConfig`` field. ``validate`` adds the range checks a type check cannot do.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from genomamba import settings
from genomamba.errors import GenomambaError
from genomamba.settings import dump, read_yaml  # noqa: F401  (re-exported for the pretrain command)

OPEN_SECTIONS = ("model",)  # sections checked against GenoMambaConfig's fields


def default_config() -> dict:
    return settings.packaged("pretrain")


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


def load_config(path: str | Path | None = None, overrides: list[str] | tuple = (),
                base: dict | None = None) -> dict:
    """Defaults (or ``base``), then the YAML file at ``path``, then ``key=value`` overrides."""
    fields = model_fields()
    open_sections = {s: fields for s in OPEN_SECTIONS} if fields else None
    cfg = settings.load(base if base is not None else default_config(), path, overrides, open_sections)
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
