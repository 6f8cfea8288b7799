# Masked-LM pretraining, one run per entry of config["pretrain"]:
#
#   pretrain:
#     tiny:                          # the {model} wildcard
#       genomes: [example]           # or {example: 1.0, other: 2.0} (sampling weights)
#       gpus: 0                      # 0: one CPU process; N: torchrun with N GPU processes
#       runtime: 30                  # minutes (SLURM)
#       mem_mb: 4000
#       overrides: {model.d_model: 32, train.steps: 200}   # `genomamba pretrain` KEY=VALUE
#
# The run resumes from its newest checkpoint when one is there (--resume auto), so a
# job that was killed (SLURM time limit, preemption) and is retried continues.

# torchrun from the job's environment (the conda env with --use-conda), else through the
# Python running snakemake
TORCHRUN = f"$(command -v torchrun || echo {shlex.quote(sys.executable)} -m torch.distributed.run)"


def _pretrain_entry(model):
    entries = config.get("pretrain") or {}
    if model not in entries:
        raise ValueError(f"config.yaml: no pretrain entry {model!r} (have: {', '.join(entries)})")
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


rule pretrain:
    wildcard_constraints:
        model=r"[A-Za-z0-9._-]+",
    input:
        lambda wc: [tokens_manifest(g) for g in _pretrain_genomes(wc.model)],
    output:
        model="results/pretrain/{model}/model/config.json",
        curve="results/pretrain/{model}/loss_curve.png",
        summary="results/pretrain/{model}/summary.json",
    params:
        torchrun=TORCHRUN,
        run_dir="results/pretrain/{model}",
        data=lambda wc: " ".join(
            f"--data {shlex.quote(f'{tokens_dir(g)}:{w}')}" for g, w in _pretrain_genomes(wc.model).items()
        ),
        overrides=lambda wc: _pretrain_overrides(wc.model),
    log:
        "results/logs/pretrain/{model}.log",
    threads: lambda wc: int(_pretrain_entry(wc.model).get("threads", 2))
    resources:
        gpu=lambda wc: int(_pretrain_entry(wc.model).get("gpus", 0)),
        runtime=lambda wc: int(_pretrain_entry(wc.model).get("runtime", 60)),
        mem_mb=lambda wc: int(_pretrain_entry(wc.model).get("mem_mb", 8000)),
    conda:
        "../../envs/genomamba.yaml"
    shell:
        "{params.torchrun} --standalone --nproc-per-node $(( {resources.gpu} > 0 ? {resources.gpu} : 1 )) "
        "-m genomamba pretrain {params.data} --out {params.run_dir} --resume auto "
        "{params.overrides} > {log} 2>&1"


ALL_TARGETS.extend(f"results/pretrain/{m}/model/config.json" for m in (config.get("pretrain") or {}))
