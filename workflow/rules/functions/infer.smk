# Helpers for workflow/rules/embed.smk and predict.smk, turning config entries into inputs
# and command-line options. Functions only (snakemake --lint wants them apart from rules).
# pretrained_model_dir and finetune_model_dir are in functions/finetune.smk.

INFER_SOURCES = ("bed", "fasta", "tsv")  # an entry names exactly one (the schemas check it)


def _infer_entry(step, name):
    entries = config.get(step) or {}
    if name not in entries:
        raise ValueError(f"config/config.yaml: no {step} entry {name!r} (have: {', '.join(entries)})")
    return entries[name]


def _infer_head(name):
    head = _infer_entry("predict", name)["head"]
    if head not in (config.get("finetune") or {}):
        raise ValueError(f"config/config.yaml: predict.{name}: head {head!r} is not a finetune entry")
    return head


def _infer_source(step, name):
    """(input files, options) of an entry's sequences: --bed with its genome's shards, --fasta or --tsv."""
    e = _infer_entry(step, name)
    kind = next(k for k in INFER_SOURCES if e.get(k))
    files, opts = [e[kind]], [f"--{kind} {shlex.quote(e[kind])}"]
    if kind == "bed":
        if not e.get("genome"):
            raise ValueError(f"config/config.yaml: {step}.{name}: a bed needs genome:")
        files.append(tokens_manifest(e["genome"]))
        opts.append(f"--genome {shlex.quote(tokens_dir(e['genome']))}")
    opts.append("--device " + ("cuda" if e["gpus"] else "cpu"))
    opts.append(command_settings(step, e))
    return files, " ".join(opts)


def _embed_inputs(wc):
    e = _infer_entry("embed", wc.name)
    return {"model": f"{pretrained_model_dir(e, f'embed.{wc.name}')}/config.json",
            "sequences": _infer_source("embed", wc.name)[0]}


def _embed_options(name):
    e = _infer_entry("embed", name)
    model = shlex.quote(pretrained_model_dir(e, f"embed.{name}"))
    return f"--model {model} {_infer_source('embed', name)[1]}"


def _predict_inputs(wc):
    return {"head": f"{finetune_model_dir(_infer_head(wc.name))}/config.json",
            "sequences": _infer_source("predict", wc.name)[0]}


def _predict_options(name):
    head = shlex.quote(finetune_model_dir(_infer_head(name)))
    return f"--head {head} {_infer_source('predict', name)[1]}"
