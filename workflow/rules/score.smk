# Variant scoring, one `genomamba score` run per entry of config["score"]:
#
#   score:
#     example:                       # the {variants} wildcard
#       vcf: resources/example.vcf.gz
#       genome: example              # reference: the genome's token shards
#       model: tiny                  # a pretrain entry (default: the only one)
#       head: example_cds            # optional: a finetune entry (adds GM_HEAD_<class>)
#       window: 1024
#
# Writes results/score/NAME.vcf.gz (every input record, GM_* INFO fields) with its tabix index
# NAME.vcf.gz.tbi (declared, so Snakemake keeps its time stamp after the data's: the input VCF
# must be sorted, as for `bcftools index`), NAME.summary.json (scored/skipped counts) and
# NAME.scores.png.


rule score:
    input:
        unpack(_score_inputs),
    output:
        vcf="results/score/{variants}.vcf.gz",
        tbi="results/score/{variants}.vcf.gz.tbi",
        summary="results/score/{variants}.summary.json",
        plot="results/score/{variants}.scores.png",
    wildcard_constraints:
        variants=r"[^/]+",
    params:
        cli=GENOMAMBA,
        options=lambda wc: _score_options(wc.variants),
    log:
        "results/logs/score/{variants}.log",
    threads: lambda wc: _score_entry(wc.variants)["threads"]
    resources:
        gpu=lambda wc: _score_entry(wc.variants)["gpus"],
        runtime=lambda wc: _score_entry(wc.variants)["runtime"],
        mem_mb=lambda wc: _score_entry(wc.variants)["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "{params.cli} score {params.options} --vcf {input.vcf:q} --out {output.vcf:q} > {log:q} 2>&1"


ALL_TARGETS.extend(f"results/score/{name}.vcf.gz" for name in (config.get("score") or {}))
