# Helpers for workflow/rules/finetune.smk, turning config entries into inputs and
# command-line options. Functions only (snakemake --lint wants them apart from rules);
# workflow/Snakefile includes workflow/rules/functions/*.smk before the rule files.


def _finetune_entry(task):
    entries = config.get("finetune") or {}
    if task not in entries:
        raise ValueError(f"config/config.yaml: no finetune entry {task!r} (have: {', '.join(entries)})")
    return entries[task]


def pretrained_model_dir(entry, where):
    """results/pretrain/MODEL/model for an entry's ``model`` (default: the only pretrain entry),
    or the path of a ``models:`` entry (a converted or external model directory)."""
    models = list(config.get("pretrain") or {})
    external = config.get("models") or {}
    name = entry.get("model")
    if name in external:
        return external[name]["path"]
    if name is None:
        if len(models) != 1:
            raise ValueError(f"config/config.yaml: {where}: set model: (pretrain entries: {', '.join(models) or 'none'}; "
                             f"models entries: {', '.join(external) or 'none'})")
        name = models[0]
    elif name not in models:
        raise ValueError(f"config/config.yaml: {where}: model {name!r} is neither a pretrain nor a models entry "
                         f"({', '.join([*models, *external])})")
    return f"results/pretrain/{name}/model"


def finetune_model_dir(task):
    return f"results/finetune/{task}/model"


def _finetune_inputs(wc):
    e = _finetune_entry(wc.task)
    inputs = {"model": f"{pretrained_model_dir(e, f'finetune.{wc.task}')}/config.json",
              "sets": [e[k] for k in ("train", "val", "test") if e.get(k)]}
    if e.get("genome"):
        inputs["genome"] = tokens_manifest(e["genome"])
    return inputs


def _finetune_options(task):
    e = _finetune_entry(task)
    opts = [f"--model {shlex.quote(pretrained_model_dir(e, f'finetune.{task}'))}"]
    for key in ("train", "val", "test"):
        if e.get(key):
            opts.append(f"--{key} {shlex.quote(e[key])}")
    if e.get("genome"):
        opts.append(f"--genome {shlex.quote(tokens_dir(e['genome']))}")
    opts.append("--device " + ("cuda" if e["gpus"] else "cpu"))
    opts.append(command_settings("finetune", e))
    return " ".join(opts)
