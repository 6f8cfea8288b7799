# Predictions of a fine-tuned classifier, one `genomamba predict` run per entry of
# config["predict"]:
#
#   predict:
#     example_test:                  # the {name} wildcard
#       head: example_cds            # a finetune entry
#       bed: resources/example_task/test.bed   # or fasta: / tsv: (exactly one)
#       genome: example              # for a bed: the genome's token shards
#
# Writes results/predict/NAME.tsv (name [label] predicted p_<class>...).


rule predict:
    input:
        unpack(_predict_inputs),
    output:
        tsv="results/predict/{name}.tsv",
    wildcard_constraints:
        name=r"[^/]+",
    params:
        cli=GENOMAMBA,
        options=lambda wc: _predict_options(wc.name),
    log:
        "results/logs/predict/{name}.log",
    threads: lambda wc: _infer_entry("predict", wc.name)["threads"]
    resources:
        gpu=lambda wc: _infer_entry("predict", wc.name)["gpus"],
        runtime=lambda wc: _infer_entry("predict", wc.name)["runtime"],
        mem_mb=lambda wc: _infer_entry("predict", wc.name)["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "{params.cli} predict {params.options} --out {output.tsv:q} > {log:q} 2>&1"


ALL_TARGETS.extend(f"results/predict/{name}.tsv" for name in (config.get("predict") or {}))
