# Helpers for workflow/rules/pretrain.smk (functions only: snakemake --lint wants them
# apart from rules); workflow/Snakefile includes workflow/rules/functions/*.smk first.
import shlex
import sys

# torchrun from the job's environment (the conda env with --use-conda), else through the
# Python running snakemake
TORCHRUN = f"$(command -v torchrun || echo {shlex.quote(sys.executable)} -m torch.distributed.run)"


def _pretrain_entry(model):
    entries = config.get("pretrain") or {}
    if model not in entries:
        raise ValueError(f"config/config.yaml: no pretrain entry {model!r} (have: {', '.join(entries)})")
    return entries[model]


def _pretrain_genomes(model):
    genomes = _pretrain_entry(model).get("genomes") or []
    if isinstance(genomes, dict):
        return {str(g): float(w) for g, w in genomes.items()}
    return {str(g): 1.0 for g in genomes}


def _flatten(mapping, prefix=""):
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _pretrain_overrides(model):
    import json

    overrides = _pretrain_entry(model).get("overrides") or {}
    pairs = []
    for key, value in _flatten(overrides):
        text = json.dumps(value) if isinstance(value, (bool, list, type(None))) else str(value)
        pairs.append(shlex.quote(f"{key}={text}"))
    return " ".join(pairs)
