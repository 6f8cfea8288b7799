"""The Snakemake skeleton: config schema, and a dry run of the tokenize rule."""

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def load_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_default_config_is_valid_and_gets_defaults():
    config = load_config()
    del config["tokenize"]
    validate(config, SCHEMA, set_default=True)
    assert config["tokenize"] == {"shard_size": 1_000_000_000, "chunk_size": 65536,
                                  "compression": "bitshuffle", "mem_mb": 4000}
    assert (REPO / load_config()["genomes"]["example"]["fasta"]).is_file()


@pytest.mark.parametrize("change,reason", [
    (lambda c: c["genomes"]["example"].pop("fasta"), "'fasta' is a required property"),
    (lambda c: c["genomes"]["example"].update(val_fraction=1.0), "greater than or equal to the maximum of 1"),
    (lambda c: c["genomes"]["example"].update(holdout_bed="held.bed"), "should not be valid under"),
    (lambda c: c["genomes"]["example"].update(val_fractoin=0.1), "'val_fractoin' was unexpected"),
    (lambda c: c["genomes"].update({"bad/name": {"fasta": "x.fa"}}), "'bad/name' does not match"),
    (lambda c: c["tokenize"].update(chunk_size=1000), "1000 is less than the minimum of 1024"),
    (lambda c: c["tokenize"].update(chunk_size=1025 * 2), "is not a multiple of 1024"),
    (lambda c: c["tokenize"].update(compression="zip"), "'zip' is not one of"),
    (lambda c: c.pop("genomes"), "'genomes' is a required property"),
])
def test_schema_rejects_bad_config(change, reason):
    config = copy.deepcopy(load_config())
    change(config)
    with pytest.raises(Exception, match="Error validating config file") as exc:
        validate(config, SCHEMA)
    assert reason in str(exc.value)


def test_dry_run_plans_one_tokenize_job_per_genome(tmp_path):
    # workflow/Snakefile includes every rule file, so the whole workflow/ goes along (and
    # genomamba/configs/, which the finetune and score rules read); the config gives only
    # genomes and tokenize, the schemas default the other keys to {}
    for part in ("workflow", "genomamba/configs", "resources/NC_001133.9.fa.gz", "resources/evaluate_example"):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (REPO / part).is_dir() else shutil.copy)(REPO / part, tmp_path / part)
    (tmp_path / "held.bed").write_text("NC_001133.9\t0\t1000\tval\n")
    full = load_config()
    config = {"genomes": full["genomes"], "tokenize": full["tokenize"]}  # the tokenize rule's keys
    config["genomes"]["second"] = {"fasta": "resources/NC_001133.9.fa.gz", "holdout_bed": "held.bed",
                                   "test_contigs": ["chrZ"]}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr + run.stdout
    out = run.stdout + run.stderr
    assert "results/tokens/example/manifest.json" in out
    assert "--out results/tokens/second --shard-size 1000000000" in out
    assert "--val-fraction 0.1 --test-fraction 0.1" in out
    assert "--test-contigs chrZ --holdout-bed held.bed" in out

    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump({**config, "typo_key": 1}))
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "unknown top-level key(s) 'typo_key'" in run.stdout + run.stderr
