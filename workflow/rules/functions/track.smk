# Helpers for workflow/rules/track.smk, turning config entries into inputs and command-line
# options. Functions only (snakemake --lint wants them apart from rules).
# pretrained_model_dir, used here too, is in functions/finetune.smk.


def _track_entry(name):
    entries = config.get("track") or {}
    if name not in entries:
        raise ValueError(f"config/config.yaml: no track entry {name!r} (have: {', '.join(entries)})")
    return entries[name]


def _track_names_regex(scattered):
    """The entry names that one job makes (scattered False) or N jobs (True), as a regex for
    the {name} wildcard: rule track and rule track_gather write the same paths."""
    names = [n for n, e in (config.get("track") or {}).items() if (e["parts"] > 1) == scattered]
    return "|".join(re.escape(n) for n in names) or "(?!)"


def _track_inputs(wc):
    e = _track_entry(wc.name)
    inputs = {"genome": tokens_manifest(e["genome"]),
              "model": f"{pretrained_model_dir(e, f'track.{wc.name}')}/config.json"}
    if e.get("regions"):
        inputs["regions"] = e["regions"]
    return inputs


def _track_part_inputs(wc):
    return {**_track_inputs(wc), "beds": f"results/track/{wc.name}.parts/regions-{wc.n}"}


def _track_options(name):
    """Everything but --regions and the outputs."""
    e = _track_entry(name)
    return " ".join([f"--model {shlex.quote(pretrained_model_dir(e, f'track.{name}'))}",
                     f"--reference {shlex.quote(tokens_dir(e['genome']))}",
                     "--device " + ("cuda" if e["gpus"] else "cpu"),
                     command_settings("track", e)])


def _track_part_size(name):
    """The entry's part_size, else the command's default (genomamba/configs/track.yaml)."""
    e = _track_entry(name)
    default = yaml.safe_load((REPO / "genomamba" / "configs" / "track.yaml").read_text())["part_size"]
    return e.get("part_size", default)


def _track_groups(wc):
    n = _track_entry(wc.name)["parts"]
    return {"groups": [f"results/track/{wc.name}.parts/part-{k}-of-{n}" for k in range(1, n + 1)]}


def _track_regions_option(name):
    regions = _track_entry(name).get("regions")
    return f"--regions {shlex.quote(regions)}" if regions else ""


def _track_alts_option(name, path):
    """--all-alts PATH for an entry with all_alts."""
    return f"--all-alts {shlex.quote(path)}" if _track_entry(name)["all_alts"] else ""
