# Embeddings, one `genomamba embed` run per entry of config["embed"]:
#
#   embed:
#     example_test:                  # the {name} wildcard
#       model: tiny                  # a pretrain entry (default: the only one)
#       bed: resources/example_task/test.bed   # or fasta: / tsv: (exactly one)
#       genome: example              # for a bed: the genome's token shards
#       pooling: mean                # see workflow/schemas/embed.schema.yaml
#
# Writes results/embed/NAME.h5 (names, lengths, [labels,] embeddings; docs/formats.md).


rule embed:
    input:
        unpack(_embed_inputs),
    output:
        h5="results/embed/{name}.h5",
    wildcard_constraints:
        name=r"[^/]+",
    params:
        cli=GENOMAMBA,
        options=lambda wc: _embed_options(wc.name),
    log:
        "results/logs/embed/{name}.log",
    threads: lambda wc: _infer_entry("embed", wc.name)["threads"]
    resources:
        gpu=lambda wc: _infer_entry("embed", wc.name)["gpus"],
        runtime=lambda wc: _infer_entry("embed", wc.name)["runtime"],
        mem_mb=lambda wc: _infer_entry("embed", wc.name)["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "{params.cli} embed {params.options} --out {output.h5:q} > {log:q} 2>&1"


ALL_TARGETS.extend(f"results/embed/{name}.h5" for name in (config.get("embed") or {}))
