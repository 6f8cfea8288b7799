# Variant-effect evaluation, one `genomamba evaluate` run per entry of config["evaluate"]:
#
#   evaluate:
#     chrIII_csq:                    # the {evaluation} wildcard
#       scores: chrIII_csq           # a score entry: its results/score/NAME.vcf.gz is evaluated
#       labels: resources/evaluate_example/labels.tsv   # or label_field: INFO_KEY
#       positive: [stop_gained]
#       negative: [synonymous]
#       stratify: substitution       # and the other `genomamba evaluate` settings
#
# The k-mer baseline (kmer_baseline: true, the default) is fitted on the score entry's
# genome. Writes results/evaluate/NAME/{metrics.json, report.md, roc.png}.


rule evaluate:
    input:
        unpack(_evaluate_inputs),
    output:
        metrics="results/evaluate/{evaluation}/metrics.json",
        report="results/evaluate/{evaluation}/report.md",
        plot="results/evaluate/{evaluation}/roc.png",
    wildcard_constraints:
        evaluation=r"[^/]+",
    params:
        cli=GENOMAMBA,
        options=lambda wc: _evaluate_options(wc.evaluation),
        out="results/evaluate/{evaluation}",
    log:
        "results/logs/evaluate/{evaluation}.log",
    threads: 1
    resources:
        mem_mb=lambda wc: _evaluate_entry(wc.evaluation)["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "{params.cli} evaluate --vcf {input.vcf:q} {params.options} --out {params.out:q} > {log:q} 2>&1"


ALL_TARGETS.extend(f"results/evaluate/{name}/metrics.json" for name in (config.get("evaluate") or {}))
