"""A dry run of the workflow in a copy of the repository, for the scatter/gather tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def dry_run(tmp_path: Path, entries: dict, targets: list[str], files=()) -> str:
    """``snakemake -n -p`` of ``targets`` with the example genome, its tokenize and pretrain
    settings and ``entries`` (top-level config keys); returns its output (asserts it worked)."""
    for part in ("workflow", "genomamba/configs", "resources/NC_001133.9.fa.gz", *files):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (REPO / part).is_dir() else shutil.copy)(REPO / part, tmp_path / part)
    full = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config = {key: full[key] for key in ("tokenize", "pretrain")}
    config["genomes"] = {"example": full["genomes"]["example"]}
    config.update(entries)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", *targets],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr + run.stdout
    return run.stdout + run.stderr
