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
#       parts: 4                     # optional: scatter into 4 jobs (default 1: one job)
#
# Writes results/score/NAME.vcf.gz (every input record, GM_* INFO fields) with its tabix index
# NAME.vcf.gz.tbi (declared, so Snakemake keeps its time stamp after the data's: the input VCF
# must be sorted, as for `bcftools index`), NAME.summary.json (scored/skipped counts) and
# NAME.scores.png.
#
# Scatter/gather (parts: N > 1): N score_part jobs, `genomamba score ... --part K/N`, each with
# the entry's gpus/threads/runtime/mem_mb (one GPU job each through profiles/slurm), score part
# K of N equal shares of the records (by count, in whole chunks of chunk_size records) into
# the temporary results/score/NAME.part-K-of-N.bcf and .summary.json; one score_gather job,
# `genomamba score-gather`, joins them into the four outputs above, byte-identical to what the
# one score job writes (header, index and the ##genomamba_command line too: the parts record
# the command without --part). The parts are a {k}/{n} wildcard expanded from the entry's N
# rather than Snakemake's scattergather directive, whose split count is one workflow-wide
# number per scatter name (--set-scatter), not a per-entry setting; the file names carry N,
# so a changed N makes new parts instead of mixing old ones.


rule score:
    input:
        unpack(_score_inputs),
    output:
        vcf="results/score/{variants}.vcf.gz",
        tbi="results/score/{variants}.vcf.gz.tbi",
        summary="results/score/{variants}.summary.json",
        plot="results/score/{variants}.scores.png",
    wildcard_constraints:
        variants=_score_names_regex(scattered=False),
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


rule score_part:
    input:
        unpack(_score_inputs),
    output:
        part=temp("results/score/{variants}.part-{k}-of-{n}.bcf"),
        summary=temp("results/score/{variants}.part-{k}-of-{n}.summary.json"),
    wildcard_constraints:
        variants=_score_names_regex(scattered=True),
        k=r"[0-9]+",
        n=r"[0-9]+",
    params:
        cli=GENOMAMBA,
        options=lambda wc: _score_options(wc.variants),
        out=lambda wc: f"results/score/{wc.variants}.vcf.gz",
    log:
        "results/logs/score/{variants}.part-{k}-of-{n}.log",
    threads: lambda wc: _score_entry(wc.variants)["threads"]
    resources:
        gpu=lambda wc: _score_entry(wc.variants)["gpus"],
        runtime=lambda wc: _score_entry(wc.variants)["runtime"],
        mem_mb=lambda wc: _score_entry(wc.variants)["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "{params.cli} score {params.options} --vcf {input.vcf:q} --out {params.out:q} --part {wildcards.k}/{wildcards.n}"
        " > {log:q} 2>&1"


rule score_gather:
    input:
        unpack(_score_part_files),
    output:
        vcf="results/score/{variants}.vcf.gz",
        tbi="results/score/{variants}.vcf.gz.tbi",
        summary="results/score/{variants}.summary.json",
        plot="results/score/{variants}.scores.png",
    wildcard_constraints:
        variants=_score_names_regex(scattered=True),
    params:
        cli=GENOMAMBA,
    log:
        "results/logs/score/{variants}.gather.log",
    threads: 1
    resources:
        runtime=lambda wc: _score_entry(wc.variants)["runtime"],
        mem_mb=2000,
    conda:
        "../envs/genomamba.yaml"
    shell:
        "{params.cli} score-gather --out {output.vcf:q} {input.parts:q} > {log:q} 2>&1"


ALL_TARGETS.extend(f"results/score/{name}.vcf.gz" for name in (config.get("score") or {}))
