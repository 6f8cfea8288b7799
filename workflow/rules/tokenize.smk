# FASTA -> HDF5 token shards + manifest.json, one job per genome in config["genomes"].


rule tokenize:
    input:
        fasta=lambda wc: genome_config(wc.genome)["fasta"],
        bed=lambda wc: genome_config(wc.genome).get("holdout_bed") or [],
    output:
        manifest=tokens_manifest("{genome}"),
    params:
        cli=GENOMAMBA,
        out=lambda wc: tokens_dir(wc.genome),
        options=lambda wc: tokenize_options(wc.genome),
    log:
        "results/logs/tokenize/{genome}.log",
    threads: 1
    resources:
        mem_mb=config["tokenize"]["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "{params.cli} tokenize --fasta {input.fasta:q} --out {params.out:q} {params.options} 2> {log:q}"


ALL_TARGETS.extend(tokens_manifest(genome) for genome in config["genomes"])
