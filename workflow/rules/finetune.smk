# Fine-tuning, one `genomamba finetune` run per entry of config["finetune"]:
#
#   finetune:
#     example_cds:                   # the {task} wildcard
#       model: tiny                  # a pretrain entry (default: the only one)
#       genome: example              # reference for BED sets (its token shards)
#       train: resources/example_task/train.bed    # BED, TSV or a folder of per-class FASTA
#       val: resources/example_task/val.bed
#       test: resources/example_task/test.bed
#       mode: probe                  # probe | full; see workflow/schemas/finetune.schema.yaml
#
# Writes results/finetune/TASK/{model/, metrics.json, predictions.tsv, scores.png}.


rule finetune:
    input:
        unpack(_finetune_inputs),
    output:
        model="results/finetune/{task}/model/config.json",
        metrics="results/finetune/{task}/metrics.json",
        predictions="results/finetune/{task}/predictions.tsv",
        plot="results/finetune/{task}/scores.png",
    wildcard_constraints:
        task=r"[^/]+",
    params:
        cli=GENOMAMBA,
        options=lambda wc: _finetune_options(wc.task),
        out="results/finetune/{task}",
    log:
        "results/logs/finetune/{task}.log",
    threads: lambda wc: _finetune_entry(wc.task)["threads"]
    resources:
        gpu=lambda wc: _finetune_entry(wc.task)["gpus"],
        runtime=lambda wc: _finetune_entry(wc.task)["runtime"],
        mem_mb=lambda wc: _finetune_entry(wc.task)["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "{params.cli} finetune {params.options} --out {params.out:q} > {log:q} 2>&1"


ALL_TARGETS.extend(f"results/finetune/{t}/metrics.json" for t in (config.get("finetune") or {}))
