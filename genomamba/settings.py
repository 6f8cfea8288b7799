"""Command settings: packaged YAML defaults, then a user's ``--config`` file, then
``key=value`` overrides, the same way for every command.

Each command's defaults are ``genomamba/configs/<command>.yaml``: the only place they are
written (the CLI's flags, the settings dataclasses and the Snakemake rules all read them
from there). Keys are dotted paths into that mapping: ``train.steps`` for pretrain's
sections, ``mode`` for fine-tuning's flat settings. Values are parsed as YAML (``32``,
``1e-3``, ``true``, ``[0.9, 0.95]``, ``null``). A key the defaults do not have is an
error naming the file (or the command line) and listing the known keys; so is a value of
another type than the default's (a ``null`` default takes any value: the command checks it).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
from importlib import resources
from pathlib import Path

import yaml

from genomamba.errors import GenomambaError

_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a mapping"}
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def packaged(command: str) -> dict:
    """The defaults of ``command`` (``genomamba/configs/<command>.yaml``)."""
    text = resources.files("genomamba").joinpath(f"configs/{command}.yaml").read_text()
    return yaml.safe_load(text) or {}


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


def parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise GenomambaError(f"override {text!r} must look like key=value (e.g. train.steps=50)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


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


def _coerce(default, value):
    """YAML 1.1 reads 1e-3 as a string: make it the number the default (or a null default) wants."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        if default is None or (isinstance(default, float) and not isinstance(default, bool)):
            return float(value)
        if isinstance(default, int) and not isinstance(default, bool):
            try:
                return int(value)
            except ValueError:
                return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _unknown(key: str, known, where: str) -> GenomambaError:
    name = key.rpartition(".")[2]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {key.rpartition('.')[0] + '.' if '.' in key else ''}{close[0]}?" if close else ""
    return GenomambaError(f"{where}: unknown setting {key!r}{hint} (known: {', '.join(sorted(known))})")


def set_key(cfg: dict, key: str, value, where: str, open_sections: dict | None = None) -> None:
    """Set the dotted ``key`` of ``cfg`` to ``value``, checked against what is there.

    ``open_sections``: ``{section: {field: default}}`` for sections that also take keys
    not listed in the defaults (``model``: every ``GenoMambaConfig`` field)."""
    parts = key.split(".")
    if not all(parts):
        raise GenomambaError(f"{where}: bad setting name {key!r}")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            if isinstance(node, dict) and part not in node:
                raise _unknown(".".join(parts[: i + 1]), node, where)
            raise GenomambaError(f"{where}: {'.'.join(parts[: i + 1])} is not a section, so {key!r} is not a setting")
        node = child
    name = parts[-1]
    section = ".".join(parts[:-1])
    extra = (open_sections or {}).get(section) or {}
    if name in node:
        default = node[name]
        if isinstance(default, dict):
            sub = ", ".join(f"{key}.{k}" for k in list(default)[:3])
            raise GenomambaError(f"{where}: {key} is a section; set its keys (e.g. {sub})")
    elif name in extra:
        default = None  # the section's own class checks its values
    else:
        raise _unknown(key, set(node) | set(extra), where)
    value = _coerce(default, value)
    if not _type_ok(default, value):
        raise GenomambaError(
            f"{where}: {key} must be {_TYPE_NAMES.get(type(default), type(default).__name__)}, got {value!r}")
    node[name] = value


def merge(cfg: dict, update, where: str, open_sections: dict | None = None, prefix: str = "") -> dict:
    """Apply a nested mapping (a ``--config`` file) onto ``cfg``, in place, key by key."""
    if not isinstance(update, dict):
        raise GenomambaError(f"{where}: expected a mapping of settings, got {type(update).__name__}")
    for name, value in update.items():
        key = f"{prefix}{name}"
        target = _get(cfg, key)
        if isinstance(target, dict):
            if not isinstance(value, dict):
                raise GenomambaError(f"{where}: section {key!r} must be a mapping")
            merge(cfg, value, where, open_sections, prefix=f"{key}.")
        else:
            set_key(cfg, key, value, where, open_sections)
    return cfg


def _get(cfg: dict, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def load(defaults: dict, path: str | Path | None = None, overrides=(), open_sections: dict | None = None) -> dict:
    """A copy of ``defaults`` with the YAML file at ``path``, then ``key=value`` overrides, applied."""
    cfg = copy.deepcopy(defaults)
    if path is not None:
        merge(cfg, read_yaml(path), str(path), open_sections)
    for text in overrides:
        key, value = parse_override(text)
        set_key(cfg, key, value, "command line", open_sections)
    return cfg


def check_number(name: str, value, integer: bool = False, minimum=None, positive: bool = False) -> None:
    """For settings whose default is null (any type gets through ``set_key``): a number
    (an integer with ``integer``), at least ``minimum`` / above 0 with ``positive``."""
    kind = "integer" if integer else "number"
    kind = f"a positive {kind}" if positive else f"an {kind}" if integer else f"a {kind}"
    if minimum is not None:
        kind += f" of at least {minimum}"
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    ok = ok and (minimum is None or value >= minimum) and (not positive or value > 0)
    if not ok:
        raise GenomambaError(f"{name} must be {kind}, got {value!r}")


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)


# --- the command line ---------------------------------------------------------------------


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Every command's help: the description as written, and each option's default after its
    help, ``(default: X)``: argparse's own default, or for a flag that defaults to None
    because its default lives in ``configs/<command>.yaml`` (see ``add_arguments``), that
    one. Help that already names its default is left as it is."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.option_strings == [] or action.nargs == 0 and action.default in (None, False):
            return text
        value = getattr(action, "settings_default", action.default)
        if value is None or value is argparse.SUPPRESS or value == []:
            return text
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        return f"{text} (default: {str(value).replace('%', '%%')})"


def add_arguments(parser, command: str, example: str) -> None:
    """``--config YAML`` and ``KEY=VALUE ...`` for a command whose defaults are ``configs/<command>.yaml``;
    the flags added before, named after a setting, show that setting's default in ``--help``."""
    defaults = packaged(command)
    for action in parser._actions:
        if action.default is None and defaults.get(action.dest) is not None:
            action.settings_default = defaults[action.dest]
    parser.add_argument("--config", metavar="YAML",
                        help=f"settings on top of the defaults (genomamba/configs/{command}.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help=f"settings, e.g. {example} (applied after --config; flags win over both)")


def from_args(args, command: str) -> dict:
    """The settings of ``command``: defaults, then ``--config``, then overrides, then every
    flag the user gave (flags default to None, so an absent flag changes nothing)."""
    cfg = load(packaged(command), args.config, args.overrides)
    for key in cfg:
        value = getattr(args, key, None)
        if value is not None:
            cfg[key] = value
    return cfg
