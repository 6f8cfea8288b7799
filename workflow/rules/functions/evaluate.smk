# Helpers for workflow/rules/evaluate.smk, turning config entries into inputs and
# command-line options. Functions only (snakemake --lint wants them apart from rules);
# workflow/Snakefile includes workflow/rules/functions/*.smk before the rule files.


def _evaluate_entry(name):
    entries = config.get("evaluate") or {}
    if name not in entries:
        raise ValueError(f"config/config.yaml: no evaluate entry {name!r} (have: {', '.join(entries)})")
    return entries[name]


def _evaluate_score_entry(name):
    scores = _evaluate_entry(name)["scores"]
    if scores not in (config.get("score") or {}):
        raise ValueError(f"config/config.yaml: evaluate.{name}: scores {scores!r} is not a score entry")
    return config["score"][scores]


def _evaluate_inputs(wc):
    e = _evaluate_entry(wc.evaluation)
    inputs = {"vcf": f"results/score/{e['scores']}.vcf.gz"}
    if e.get("labels"):
        inputs["labels"] = e["labels"]
    if e["kmer_baseline"]:
        inputs["genome"] = tokens_manifest(_evaluate_score_entry(wc.evaluation)["genome"])
    return inputs


def _evaluate_options(name):
    e = _evaluate_entry(name)
    opts = []
    if e.get("labels"):
        opts.append(f"--labels {shlex.quote(e['labels'])}")
    if e["kmer_baseline"]:
        opts.append(f"--reference {shlex.quote(tokens_dir(_evaluate_score_entry(name)['genome']))}")
    opts.append(command_settings("evaluate", e))
    return " ".join(opts)
