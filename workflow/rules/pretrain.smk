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
    threads: lambda wc: _pretrain_entry(wc.model)["threads"]
    resources:
        gpu=lambda wc: _pretrain_entry(wc.model)["gpus"],
        runtime=lambda wc: _pretrain_entry(wc.model)["runtime"],
        mem_mb=lambda wc: _pretrain_entry(wc.model)["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "{params.torchrun} --standalone --nproc-per-node $(( {resources.gpu} > 0 ? {resources.gpu} : 1 )) "
        "-m genomamba pretrain {params.data} --out {params.run_dir} --resume auto "
        "{params.overrides} > {log} 2>&1"


ALL_TARGETS.extend(f"results/pretrain/{m}/model/config.json" for m in (config.get("pretrain") or {}))
