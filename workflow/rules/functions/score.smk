# Helpers for workflow/rules/score.smk, turning config entries into inputs and
# command-line options. Functions only (snakemake --lint wants them apart from rules);
# workflow/Snakefile includes workflow/rules/functions/*.smk before the rule files.
# pretrained_model_dir and finetune_model_dir, used here too, are in functions/finetune.smk.


def _score_entry(name):
    entries = config.get("score") or {}
    if name not in entries:
        raise ValueError(f"config/config.yaml: no score entry {name!r} (have: {', '.join(entries)})")
    return entries[name]


def _score_parts(name):
    """How many `genomamba score --part K/N` jobs score the entry (1: one `score` job)."""
    return _score_entry(name)["parts"]


def _score_names_regex(scattered):
    """The entry names that one job scores (scattered False) or N jobs (True), as a regex for
    the {variants} wildcard: rule score and rule score_gather write the same paths, each for
    its own entries."""
    names = [n for n in (config.get("score") or {}) if (_score_parts(n) > 1) == scattered]
    return "|".join(re.escape(n) for n in names) or "(?!)"


def _score_part_files(wc):
    """The N parts (and their summaries) that score_gather joins, in order."""
    n = _score_parts(wc.variants)
    stems = [f"results/score/{wc.variants}.part-{k}-of-{n}" for k in range(1, n + 1)]
    return {"parts": [f"{s}.bcf" for s in stems], "summaries": [f"{s}.summary.json" for s in stems]}


def _score_head(name):
    e = _score_entry(name)
    head = e.get("head")
    if head and head not in (config.get("finetune") or {}):
        raise ValueError(f"config/config.yaml: score.{name}: head {head!r} is not a finetune entry")
    return head


def _score_inputs(wc):
    e = _score_entry(wc.variants)
    inputs = {"vcf": e["vcf"], "genome": tokens_manifest(e["genome"]),
              "model": f"{pretrained_model_dir(e, f'score.{wc.variants}')}/config.json"}
    if _score_head(wc.variants):
        inputs["head"] = f"{finetune_model_dir(_score_head(wc.variants))}/config.json"
    return inputs


def _score_options(name):
    e = _score_entry(name)
    opts = [f"--model {shlex.quote(pretrained_model_dir(e, f'score.{name}'))}",
            f"--reference {shlex.quote(tokens_dir(e['genome']))}",
            "--device " + ("cuda" if e["gpus"] else "cpu")]
    if _score_head(name):
        opts.append(f"--head {shlex.quote(finetune_model_dir(_score_head(name)))}")
    opts.append(command_settings("score", e))
    return " ".join(opts)
