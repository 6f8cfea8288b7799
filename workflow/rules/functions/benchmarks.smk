# Helpers for workflow/rules/benchmarks.smk, turning the benchmarks section into inputs
# and command-line options. Functions only (snakemake --lint wants them apart from rules);
# workflow/Snakefile includes workflow/rules/functions/*.smk before the rule files.


def _benchmarks():
    return config.get("benchmarks") or {"tasks": {}, "models": []}


def _benchmark_task(task):
    tasks = _benchmarks()["tasks"]
    if task not in tasks:
        raise ValueError(f"config/config.yaml: no benchmarks task {task!r} (have: {', '.join(tasks)})")
    return tasks[task]


def _benchmark_model(model):
    if model not in (config.get("pretrain") or {}):
        raise ValueError(f"config/config.yaml: benchmarks.models: {model!r} is not a pretrain entry")
    return f"results/pretrain/{model}/model"


def _benchmark_runs():
    """results/benchmarks/MODEL/TASK/metrics.json for every model and task."""
    b = _benchmarks()
    return [f"results/benchmarks/{m}/{t}/metrics.json" for m in b["models"] for t in b["tasks"]]


def _benchmark_inputs(wc):
    t = _benchmark_task(wc.task)
    inputs = {"model": f"{_benchmark_model(wc.model)}/config.json",
              "sets": [t[k] for k in ("train", "val", "test") if t.get(k)]}
    if t.get("genome"):
        inputs["genome"] = tokens_manifest(t["genome"])
    return inputs


def _benchmark_options(model, task):
    t, b = _benchmark_task(task), _benchmarks()
    opts = [f"--model {shlex.quote(_benchmark_model(model))}"]
    for key in ("train", "val", "test"):
        if t.get(key):
            opts.append(f"--{key} {shlex.quote(t[key])}")
    if t.get("genome"):
        opts.append(f"--genome {shlex.quote(tokens_dir(t['genome']))}")
    opts.append("--device " + ("cuda" if b["gpus"] else "cpu"))
    if b["baselines"]:
        opts.append(f"--baselines {','.join(b['baselines'])}")
    opts.append(command_settings("finetune", {**b["settings"], **(t.get("settings") or {})}))
    return " ".join(opts)
