# Classification benchmarks: `genomamba finetune` for every task of config["benchmarks"]
# and every model named there, with the baselines (kmer, onehot) fitted on the same splits,
# gathered into one table:
#
#   benchmarks:
#     models: [tiny]                 # pretrain entries
#     baselines: [kmer, onehot]      # default
#     settings: {mode: probe}        # finetune settings for every run (a task may add its own)
#     tasks:
#       splice_donor:                # the {task} wildcard
#         train: resources/splice_task/donor/train.tsv.gz   # BED (with genome:), TSV or folder
#         val: ...
#         test: ...
#
# Writes results/benchmarks/MODEL/TASK/ (what finetune writes) and
# results/benchmarks/summary.{tsv,md,png}: per task, every model beside both baselines and
# the majority-class baseline.


rule benchmark:
    input:
        unpack(_benchmark_inputs),
    output:
        metrics="results/benchmarks/{model}/{task}/metrics.json",
    wildcard_constraints:
        model=r"[^/]+",
        task=r"[^/]+",
    params:
        cli=GENOMAMBA,
        options=lambda wc: _benchmark_options(wc.model, wc.task),
        out="results/benchmarks/{model}/{task}",
    log:
        "results/logs/benchmark/{model}.{task}.log",
    threads: lambda wc: _benchmarks()["threads"]
    resources:
        gpu=lambda wc: _benchmarks()["gpus"],
        runtime=lambda wc: _benchmarks()["runtime"],
        mem_mb=lambda wc: _benchmarks()["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "{params.cli} finetune {params.options} --out {params.out:q} > {log:q} 2>&1"


rule benchmarks_summary:
    input:
        _benchmark_runs(),
    output:
        tsv="results/benchmarks/summary.tsv",
        md="results/benchmarks/summary.md",
        plot="results/benchmarks/summary.png",
    log:
        "results/logs/benchmarks_summary.log",
    conda:
        "../envs/genomamba.yaml"
    script:
        "../scripts/benchmarks_summary.py"


if _benchmark_runs():
    ALL_TARGETS.append("results/benchmarks/summary.tsv")
