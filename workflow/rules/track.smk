# Genome-wide tracks, one `genomamba track` run per entry of config["track"]:
#
#   track:
#     example_track:                 # the {name} wildcard
#       genome: example              # reference: the genome's token shards
#       model: tiny                  # a pretrain entry (default: the only one)
#       regions: my.bed              # optional: chrom, start, end (default: every contig, whole)
#       score: min-llr               # optional: min-llr, mean-llr, entropy, ref-logp
#       all_alts: true               # optional: also every ALT's LLR as a tabix-indexed TSV
#       parts: 4                     # optional: scatter into 4 jobs (default 1: one job)
#
# Writes the directory results/track/NAME/: track.bw (bigWig, one value per position) and,
# with all_alts, all_alts.tsv.gz + .tbi (a directory, as these files depend on the entry).
#
# Scatter/gather (parts: N > 1): track_split (a local job) plans the track's parts as
# `genomamba track` does (the regions sorted, merged and cut into part_size pieces) and deals
# them into N groups of consecutive parts with nearly equal bases, one BED each
# (results/track/NAME.parts/regions-N/part-K-of-N.bed); N track_part jobs, each with the
# entry's gpus/threads/runtime/mem_mb, run `genomamba track --regions` on their BED into the
# temporary results/track/NAME.parts/part-K-of-N/; track_gather copies them, part by part
# through the track's own writers, into results/track/NAME/ (the same values as one job;
# workflow/scripts/track_parts.py). As for score, the parts are a {k}/{n} wildcard expanded
# from the entry's N, not Snakemake's scattergather (one workflow-wide count per name).


rule track:
    input:
        unpack(_track_inputs),
    output:
        directory("results/track/{name}"),
    wildcard_constraints:
        name=_track_names_regex(scattered=False),
    params:
        cli=GENOMAMBA,
        options=lambda wc: _track_options(wc.name),
        regions=lambda wc: _track_regions_option(wc.name),
        alts=lambda wc: _track_alts_option(wc.name, f"results/track/{wc.name}/all_alts.tsv.gz"),
    log:
        "results/logs/track/{name}.log",
    threads: lambda wc: _track_entry(wc.name)["threads"]
    resources:
        gpu=lambda wc: _track_entry(wc.name)["gpus"],
        runtime=lambda wc: _track_entry(wc.name)["runtime"],
        mem_mb=lambda wc: _track_entry(wc.name)["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "mkdir -p {output:q} && {params.cli} track {params.options} {params.regions} --out {output:q}/track.bw"
        " {params.alts} > {log:q} 2>&1"


localrules:
    track_split,


rule track_split:
    input:
        unpack(_track_inputs),
    output:
        beds=directory("results/track/{name}.parts/regions-{n}"),
    wildcard_constraints:
        name=_track_names_regex(scattered=True),
        n=r"[0-9]+",
    params:
        reference=lambda wc: tokens_dir(_track_entry(wc.name)["genome"]),
        regions=lambda wc: _track_entry(wc.name).get("regions") or "-",
        part_size=lambda wc: _track_part_size(wc.name),
        parts=lambda wc: int(wc.n),
    log:
        "results/logs/track/{name}.split-{n}.log",
    conda:
        "../envs/genomamba.yaml"
    script:
        "../scripts/track_parts.py"


rule track_part:
    input:
        unpack(_track_part_inputs),
    output:
        temp(directory("results/track/{name}.parts/part-{k}-of-{n}")),
    wildcard_constraints:
        name=_track_names_regex(scattered=True),
        k=r"[0-9]+",
        n=r"[0-9]+",
    params:
        cli=GENOMAMBA,
        options=lambda wc: _track_options(wc.name),
        alts=lambda wc: _track_alts_option(
            wc.name, f"results/track/{wc.name}.parts/part-{wc.k}-of-{wc.n}/all_alts.tsv.gz"
        ),
    log:
        "results/logs/track/{name}.part-{k}-of-{n}.log",
    threads: lambda wc: _track_entry(wc.name)["threads"]
    resources:
        gpu=lambda wc: _track_entry(wc.name)["gpus"],
        runtime=lambda wc: _track_entry(wc.name)["runtime"],
        mem_mb=lambda wc: _track_entry(wc.name)["mem_mb"],
    conda:
        "../envs/genomamba.yaml"
    shell:
        "mkdir -p {output:q} && {params.cli} track {params.options}"
        " --regions {input.beds:q}/part-{wildcards.k}-of-{wildcards.n}.bed --out {output:q}/track.bw"
        " {params.alts} > {log:q} 2>&1"


rule track_gather:
    input:
        unpack(_track_groups),
    output:
        directory("results/track/{name}"),
    wildcard_constraints:
        name=_track_names_regex(scattered=True),
    params:
        reference=lambda wc: tokens_dir(_track_entry(wc.name)["genome"]),
        regions=lambda wc: _track_entry(wc.name).get("regions") or "-",
        part_size=lambda wc: _track_part_size(wc.name),
        all_alts=lambda wc: f"results/track/{wc.name}/all_alts.tsv.gz" if _track_entry(wc.name)["all_alts"] else "-",
    log:
        "results/logs/track/{name}.gather.log",
    threads: 1
    resources:
        runtime=lambda wc: _track_entry(wc.name)["runtime"],
        mem_mb=4000,
    conda:
        "../envs/genomamba.yaml"
    script:
        "../scripts/track_parts.py"


ALL_TARGETS.extend(f"results/track/{name}" for name in (config.get("track") or {}))
