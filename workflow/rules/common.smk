# Shared by all .smk files: config validation, the genomamba command, path helpers
# and ALL_TARGETS (the final outputs that `rule all` requests; each rule file appends).
# (re, shlex, shutil, sys and Path are also used by the other rule files, which share this namespace)
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

REPO = Path(workflow.basedir).parent  # the repository root (workflow.basedir: workflow/)
SCHEMAS = REPO / "workflow" / "schemas"


def _validate_config():
    """Validate against config.schema.yaml, then every other *.schema.yaml (one per step),
    filling defaults; then reject top-level keys that no schema defines (typos)."""
    paths = [SCHEMAS / "config.schema.yaml"] + sorted(
        p for p in SCHEMAS.glob("*.schema.yaml") if p.name != "config.schema.yaml"
    )
    known = set()
    for path in paths:
        validate(config, str(path), set_default=True)
        known |= set(yaml.safe_load(path.read_text()).get("properties", {}))
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"config: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            f"each key must be defined in a schema under {SCHEMAS}"
        )


_validate_config()

ALL_TARGETS = []

# The CLI of this package, resolved in the job's shell: `genomamba` from the job's
# environment (the conda env with --use-conda), else (e.g. venv/bin/snakemake run from an
# inactive venv) the package through the Python that runs snakemake. Use as {params.cli}.
GENOMAMBA = f"$(command -v genomamba || echo {shlex.quote(sys.executable)} -m genomamba)"



def command_settings(command, entry):
    """KEY=VALUE arguments for the settings of a config entry that the command defines
    (the keys of genomamba/configs/COMMAND.yaml), passed as they are: the command fills in
    every other setting from that same file, so the pipeline and the CLI share one set of
    defaults."""
    known = yaml.safe_load((REPO / "genomamba" / "configs" / f"{command}.yaml").read_text())
    return " ".join(shlex.quote(f"{key}={_yaml_text(value)}") for key, value in entry.items() if key in known)


def _yaml_text(value):
    """``value`` as the command reads it back (YAML): plain text where that is exact, else JSON."""
    if isinstance(value, str) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


def genome_config(name):
    return config["genomes"][name]


def tokens_dir(genome):
    """Directory of a tokenized genome (shards + manifest.json)."""
    return f"results/tokens/{genome}"


def tokens_manifest(genome):
    """The file to depend on for a tokenized genome (``genomamba.data.Genome(its parent)``)."""
    return f"{tokens_dir(genome)}/manifest.json"


def tokenize_options(genome):
    """CLI options for a genome's split rule and the tokenize settings."""
    g, t = genome_config(genome), config["tokenize"]
    opts = [
        f"--shard-size {t['shard_size']}",
        f"--chunk-size {t['chunk_size']}",
        f"--compression {t['compression']}",
    ]
    for key in ("val_contigs", "test_contigs"):
        if g.get(key):
            opts.append(f"--{key.replace('_', '-')} " + " ".join(map(shlex.quote, g[key])))
    for key in ("val_fraction", "test_fraction"):
        if g.get(key):
            opts.append(f"--{key.replace('_', '-')} {g[key]}")
    if g.get("holdout_bed"):
        opts.append(f"--holdout-bed {shlex.quote(g['holdout_bed'])}")
    return " ".join(opts)
