# genomamba pipeline. Run: snakemake --cores N [--use-conda] [--profile profiles/local]
#
# Included in this order: workflow/rules/common.smk (config validation, helpers,
# ALL_TARGETS), then every workflow/rules/functions/*.smk (helper functions of a step,
# kept apart from its rules as `snakemake --lint` asks), then every other
# workflow/rules/*.smk, alphabetically. A rule file adds its final outputs to
# ALL_TARGETS, which `rule all` (the default target) requests. Because of the
# alphabetical order, rule files refer to each other's outputs by path (helpers such as
# tokens_manifest(genome) in common.smk), not through rules.<name>.
from pathlib import Path

from snakemake.utils import min_version

min_version("8.0")


configfile: "config.yaml"


wildcard_constraints:
    genome=r"[^/]+",


include: "workflow/rules/common.smk"


_rules = Path(workflow.basedir, "workflow", "rules")
for _smk in sorted(_rules.glob("functions/*.smk")) + sorted(_rules.glob("*.smk")):
    if _smk.name != "common.smk" or _smk.parent != _rules:

        include: str(_smk)


rule all:
    default_target: True
    input:
        ALL_TARGETS,
