"""A scattered score entry (parts: N) in the Snakemake workflow: a dry run plans N score_part
jobs (`genomamba score --part K/N`) and one score_gather job; an entry without parts still
plans one score job; the schema rejects parts < 1."""

import copy
import re
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from workflow_helpers import dry_run

REPO = Path(__file__).resolve().parents[1]


def load_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_schema_takes_parts_and_rejects_less_than_one():
    config = load_config()
    config["score"]["example"]["parts"] = 3
    validate(config, str(REPO / "workflow" / "schemas" / "score.schema.yaml"), set_default=True)
    assert config["score"]["chrIII_csq"]["parts"] == 1  # the default: one job
    bad = copy.deepcopy(config)
    bad["score"]["example"]["parts"] = 0
    with pytest.raises(Exception, match="0 is less than the minimum of 1"):
        validate(bad, str(REPO / "workflow" / "schemas" / "score.schema.yaml"))


def test_dry_run_scatters_an_entry_into_n_part_jobs_and_one_gather(tmp_path):
    entry = {"vcf": "resources/example.vcf.gz", "genome": "example", "window": 129}
    out = dry_run(tmp_path, {"score": {"whole": entry, "scattered": {**entry, "parts": 3, "gpus": 1, "mem_mb": 12345}}},
                  ["results/score/whole.vcf.gz", "results/score/scattered.vcf.gz"], files=["resources/example.vcf.gz"])
    counts = dict(re.findall(r"^(score\w*)\s+(\d+)$", out, re.M))
    assert counts == {"score": "1", "score_part": "3", "score_gather": "1"}
    for k in (1, 2, 3):  # each part: the entry's command, its final --out, and --part K/3, on the GPU
        assert re.search(rf"score --model \S+ --reference results/tokens/example --device cuda .*"
                         rf"--vcf resources/example.vcf.gz --out results/score/scattered.vcf.gz --part {k}/3 ", out)
    parts = " ".join(f"results/score/scattered.part-{k}-of-3.bcf" for k in (1, 2, 3))
    assert f"score-gather --out results/score/scattered.vcf.gz {parts} " in out
    assert "--device cpu" in out and "--out results/score/whole.vcf.gz >" in out  # the unscattered job
    assert out.count("--part ") == 3
    assert "Would remove temporary output results/score/scattered.part-2-of-3.bcf" in out

    # each part job asks for what the entry asks for (a GPU), as the one score job would
    blocks = re.findall(r"^rule (score\w*):\n((?:    .*\n)+)", out, re.M)
    part_resources = [re.search(r"resources: (.*)", b).group(1) for rule, b in blocks if rule == "score_part"]
    assert len(part_resources) == 3
    assert all("gpu=1" in r and "runtime=60" in r and "mem_mb=12345" in r for r in part_resources)
    gather = [re.search(r"resources: (.*)", b).group(1) for rule, b in blocks if rule == "score_gather"]
    assert len(gather) == 1 and "gpu=" not in gather[0]
