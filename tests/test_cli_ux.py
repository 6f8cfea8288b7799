"""What a new user meets at the command line (issue 17): one-line errors from every reader,
--model given as a run directory or a training checkpoint, a closed pipe, indexed and traceable
scored VCFs, readable output modes, no \\r progress bars in logs, fast --help, defaults in
--help, the conda environment file, 1-based region names and plurals.

Small and CPU-only: a 3 kb genome, a 4-step pretraining run of a d_model-8 model.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam
import pytest
import yaml

from genomamba.cli import main

ROOT = Path(__file__).resolve().parents[1]
LENGTH = 3000
TINY = ["model.d_model=8", "model.n_layer=1", "model.d_state=4", "model.expand=1",
        "model.gradient_checkpointing=false", "data.window=64", "data.min_interval=64", "data.num_workers=0",
        "train.steps=4", "train.batch_size=2", "train.warmup_steps=1", "train.log_every=2",
        "train.eval_every=2", "train.eval_batches=1", "train.checkpoint_every=2"]


def error_line(capsys) -> str:
    """The one line of stderr that is the error; it starts a line of its own."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "genomamba: error:" in ln]
    assert len(lines) == 1 and lines[0].startswith("genomamba: error: "), err
    assert "Traceback" not in err and "\r" not in err, err
    return lines[0]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A genome (FASTA and tokens), a VCF of SNVs and a finished 4-step pretraining run."""
    d = tmp_path_factory.mktemp("ux")
    rng = np.random.default_rng(17)
    seq = "".join(rng.choice(list("ACGT"), size=LENGTH))
    lines = [seq[i : i + 60] for i in range(0, LENGTH, 60)]
    (d / "genome").mkdir()
    (d / "genome" / "ref.fa").write_text(">c1 test\n" + "\n".join(lines) + "\n")
    rows = []
    for pos in (200, 1100, 2500):
        ref = seq[pos - 1]
        rows.append(f"c1\t{pos}\tv{pos}\t{ref}\t{'ACGT'[('ACGT'.index(ref) + 1) % 4]}\t.\t.\t.")
    (d / "in.vcf").write_text("##fileformat=VCFv4.2\n##contig=<ID=c1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                              + "\n".join(rows) + "\n")
    assert main(["tokenize", "--fasta", str(d / "genome" / "ref.fa"), "--out", str(d / "tokens"),
                 "--val-fraction", "0.2", "--quiet"]) == 0
    old = os.umask(0o022)
    try:
        assert main(["pretrain", "--data", str(d / "tokens"), "--out", str(d / "run"), *TINY]) == 0
    finally:
        os.umask(old)
    return {"dir": d, "seq": seq, "fasta": d / "genome" / "ref.fa", "vcf": str(d / "in.vcf"), "run": d / "run"}


def score(setup, out, *extra, model=None, reference=None, vcf=None):
    return main(["score", "--model", str(model or setup["run"]), "--reference", str(reference or setup["fasta"]),
                 "--vcf", str(vcf or setup["vcf"]), "--out", str(out), "--device", "cpu", *map(str, extra)])


# ---- 1, 2, 5: reference FASTA errors, and no index left beside the user's file -------------

def test_truncated_gzip_reference_is_one_line_naming_record_and_line(setup, tmp_path, capsys):
    data = gzip.compress(setup["fasta"].read_bytes())
    (tmp_path / "trunc.fa.gz").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out" / "o.vcf.gz"
    assert score(setup, out, reference=tmp_path / "trunc.fa.gz") == 1
    line = error_line(capsys)
    assert re.search(r"trunc\.fa\.gz, record 'c1', line \d+: truncated or corrupt gzip", line), line
    assert files_in(tmp_path) == ["trunc.fa.gz"]


def test_truncated_bgzip_reference_is_one_line_and_leaves_no_index(setup, tmp_path, capsys):
    pysam.tabix_compress(str(setup["fasta"]), str(tmp_path / "ref.fa.gz"))
    data = (tmp_path / "ref.fa.gz").read_bytes()
    (tmp_path / "ref.fa.gz").write_bytes(data[: len(data) // 2])
    assert score(setup, tmp_path / "o.vcf.gz", reference=tmp_path / "ref.fa.gz") == 1
    assert "ref.fa.gz: cannot index FASTA: truncated or corrupt?" in error_line(capsys)
    assert files_in(tmp_path) == ["ref.fa.gz"]


def test_invalid_base_names_the_contig_position_on_a_line_of_its_own(setup, tmp_path, capsys):
    seq = setup["seq"]
    bad = seq[:1084] + "*" + seq[1085:]  # contig position 1085, inside the window of the SNV at 1100
    (tmp_path / "star.fa").write_text(">c1\n" + "\n".join(bad[i : i + 60] for i in range(0, LENGTH, 60)) + "\n")
    assert score(setup, tmp_path / "o.vcf.gz", "window=64", reference=tmp_path / "star.fa") == 1
    line = error_line(capsys)
    assert line.startswith("genomamba: error: ") and "star.fa, record 'c1': invalid character '*' at position 1085 " in line
    assert files_in(tmp_path) == ["star.fa"]  # no output, no .fai beside the FASTA


def test_failed_score_leaves_no_fai_and_a_successful_one_keeps_it(setup, tmp_path, capsys):
    fasta = tmp_path / "ref.fa"
    fasta.write_bytes(setup["fasta"].read_bytes())
    mismatch = tmp_path / "bad.vcf"
    mismatch.write_text(Path(setup["vcf"]).read_text().replace("\tv200\t" + setup["seq"][199],
                                                              "\tv200\t" + ("A" if setup["seq"][199] != "A" else "C")))
    assert score(setup, tmp_path / "o.vcf.gz", reference=fasta, vcf=mismatch) == 1
    assert "do not match the reference" in error_line(capsys)
    assert files_in(tmp_path) == ["bad.vcf", "ref.fa"]
    assert score(setup, tmp_path / "o.vcf.gz", "window=64", reference=fasta) == 0
    assert (tmp_path / "ref.fa.fai").read_text().startswith(f"c1\t{LENGTH}\t")


# ---- 3, 11: which --model paths work, and when they are checked ----------------------------

def test_model_as_run_directory_model_dir_or_training_checkpoint(setup, tmp_path, capsys):
    run = setup["run"]
    checkpoint = sorted((run / "checkpoints").glob("step-*.pt"))[-1]  # the last step: the same weights as model/
    tables = []
    for i, model in enumerate((run, run / "model", checkpoint)):
        out = tmp_path / f"o{i}.tsv"
        assert score(setup, out, model=model) == 0, capsys.readouterr().err
        tables.append([ln.split("\t")[5:7] for ln in out.read_text().splitlines()[1:]])
    assert tables[0] == tables[1] == tables[2] and len(tables[0]) == 3
    err = capsys.readouterr().err
    assert "window 64 bases, the model's pretraining window" in err  # also read from the .pt


def test_wrong_model_is_reported_before_the_vcf_is_read(setup, tmp_path, capsys):
    from genomamba.model import GenoMambaConfig, GenoMambaForSequenceClassification

    missing_vcf = tmp_path / "missing.vcf"
    for model, words in ((tmp_path / "nope", "no such file or directory (--model: give a checkpoint directory"),
                         (setup["dir"] / "tokens", "not a genomamba model directory (no config.json)"),
                         (setup["fasta"], "a file, but not a training checkpoint (.pt)")):
        assert score(setup, tmp_path / "o.vcf.gz", model=model, vcf=missing_vcf) == 1
        assert words in error_line(capsys)
    clf = tmp_path / "clf"
    GenoMambaForSequenceClassification(GenoMambaConfig(d_model=8, n_layer=1), num_labels=2).save_pretrained(clf)
    assert score(setup, tmp_path / "o.vcf.gz", model=clf, vcf=missing_vcf) == 1
    assert "a fine-tuned classifier; --model needs a pretrained masked-LM checkpoint" in error_line(capsys)
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints").mkdir(parents=True)
    (unfinished / "checkpoints" / "step-00000002.pt").write_bytes(b"")
    assert score(setup, tmp_path / "o.vcf.gz", model=unfinished, vcf=missing_vcf) == 1
    assert "has not finished" in (line := error_line(capsys)) and "step-00000002.pt" in line
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 not really")
    assert score(setup, tmp_path / "o.vcf.gz", model=tmp_path / "broken.pt", vcf=missing_vcf) == 1
    assert "broken.pt: cannot read as a training checkpoint" in error_line(capsys)
    assert not (tmp_path / "o.vcf.gz").exists()


def test_window_longer_than_the_pretraining_window_is_a_warning(setup, tmp_path, capsys):
    assert score(setup, tmp_path / "o.tsv", "window=256") == 0
    assert "warning: window 256 is longer than the 64 bases" in capsys.readouterr().err
    assert score(setup, tmp_path / "o.tsv", "window=32") == 0
    assert "warning" not in capsys.readouterr().err


# ---- 4: a closed pipe ------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_info_into_a_closed_pipe_exits_quietly(setup, extra):
    proc = subprocess.Popen([sys.executable, "-m", "genomamba", "info", str(setup["dir"] / "tokens"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first write (as `| head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""


# ---- 6: model.* keys -------------------------------------------------------------------------

def test_unknown_model_key_lists_every_config_field(setup, tmp_path, capsys):
    from genomamba.model import GenoMambaConfig

    assert main(["pretrain", "--data", str(setup["dir"] / "tokens"), "--out", str(tmp_path / "r"),
                 "model.d_modle=32"]) == 1
    line = error_line(capsys)
    assert "did you mean model.d_model?" in line
    known = line.split("(known: ")[1].rstrip(")").split(", ")
    assert {f.name for f in dataclasses.fields(GenoMambaConfig)} <= set(known)
    assert not (tmp_path / "r").exists()


# ---- 7, 8, 9: indexed, traceable, readable outputs -------------------------------------------

def test_vcf_gz_and_bcf_are_indexed_and_record_provenance(setup, tmp_path, capsys):
    run = setup["run"]
    sha = json.loads((run / "model" / "config.json").read_text())["weights_sha256"]
    old = os.umask(0o022)
    try:
        assert score(setup, tmp_path / "o.vcf.gz", "window=64") == 0
        assert score(setup, tmp_path / "o.bcf", "window=64") == 0
    finally:
        os.umask(old)
    assert files_in(tmp_path) == ["o.bcf", "o.bcf.csi", "o.scores.png", "o.summary.json", "o.vcf.gz", "o.vcf.gz.tbi"]
    for name in files_in(tmp_path):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    fetched = list(pysam.TabixFile(str(tmp_path / "o.vcf.gz")).fetch("c1", 1000, 1200))
    assert len(fetched) == 1 and fetched[0].split("\t")[2] == "v1100"
    with pysam.VariantFile(str(tmp_path / "o.bcf")) as bcf:
        assert [r.id for r in bcf.fetch("c1", 2000, 3000)] == ["v2500"]
    for path in (tmp_path / "o.vcf.gz", tmp_path / "o.bcf"):
        with pysam.VariantFile(str(path)) as vf:
            lines = {r.key: r.value for r in vf.header.records if r.key.startswith("genomamba_")}
        from genomamba import __version__

        assert lines["genomamba_version"] == __version__
        assert lines["genomamba_command"].startswith(f"genomamba score --model {run} ") and path.name in \
            lines["genomamba_command"]
        assert lines["genomamba_model"] == f"{run / 'model'};weights_sha256={sha}"
        assert lines["genomamba_window"] == "63" and lines["genomamba_precision"] == "fp32"
    provenance = json.loads((tmp_path / "o.summary.json").read_text())["provenance"]
    assert provenance["model"] == {"path": str(run / "model"), "weights_sha256": sha}
    assert provenance["window"] == 63 and provenance["precision"] == "fp32"
    assert provenance["command"] == lines["genomamba_command"]


def test_long_contig_gets_a_csi_index(setup, tmp_path):
    text = Path(setup["vcf"]).read_text().replace("##contig=<ID=c1>", "##contig=<ID=c1,length=600000000>")
    (tmp_path / "long.vcf").write_text(text)
    assert score(setup, tmp_path / "out" / "o.vcf.gz", "window=64", vcf=tmp_path / "long.vcf") == 0
    out = tmp_path / "out"
    assert "o.vcf.gz.csi" in files_in(out) and "o.vcf.gz.tbi" not in files_in(out)
    with pysam.VariantFile(str(out / "o.vcf.gz")) as vf:
        assert [r.id for r in vf.fetch("c1", 150, 250)] == ["v200"]


def test_unsorted_input_is_written_in_its_order_without_an_index(setup, tmp_path, capsys):
    lines = Path(setup["vcf"]).read_text().splitlines()
    body = [ln for ln in lines if not ln.startswith("#")]
    (tmp_path / "unsorted.vcf").write_text("\n".join([ln for ln in lines if ln.startswith("#")] + body[::-1]) + "\n")
    assert score(setup, tmp_path / "out" / "o.vcf.gz", "window=64", vcf=tmp_path / "unsorted.vcf") == 0
    assert "o.vcf.gz is not indexed: the input's records are not sorted" in capsys.readouterr().err
    assert files_in(tmp_path / "out") == ["o.scores.png", "o.summary.json", "o.vcf.gz"]
    with pysam.VariantFile(str(tmp_path / "out" / "o.vcf.gz")) as vf:
        assert [r.id for r in vf] == ["v2500", "v1100", "v200"]


def test_pretraining_outputs_are_readable_under_the_umask(setup):
    run = setup["run"]
    paths = [run / n for n in ("config.yaml", "summary.json", "loss_curve.png", "metrics.jsonl")]
    paths += sorted((run / "checkpoints").glob("*.pt")) + sorted((run / "model").iterdir())
    assert len(paths) >= 7
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    for folder in (run, run / "checkpoints", run / "model"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder


# ---- 10, 16: logs without \r; finetune's region names --------------------------------------

def test_logs_get_plain_lines_not_progress_bars(setup, tmp_path, capfd):
    # pretraining (stderr is not a terminal here)
    assert main(["pretrain", "--data", str(setup["dir"] / "tokens"), "--out", str(tmp_path / "run"), *TINY]) == 0
    err = capfd.readouterr().err
    assert "\r" not in err and "step 2/4: train loss" in err and "step 4: val loss" in err
    # scoring
    assert score(setup, tmp_path / "o.tsv") == 0
    err = capfd.readouterr().err
    assert "\r" not in err and "score: 3/3 rec" in err and "score: 3 records, 3 ALT alleles" in err
    # fine-tuning on BED intervals: plain epoch lines, and samtools-style (1-based) names
    for split, first in (("train", 0), ("val", 1000)):
        rows = [f"c1\t{first + 100 * i}\t{first + 100 * i + 40}\t{'ab'[i % 2]}" for i in range(8)]
        (tmp_path / f"{split}.bed").write_text("\n".join(rows) + "\n")
    assert main(["finetune", "--model", str(setup["run"] / "model"), "--genome", str(setup["fasta"]),
                 "--train", str(tmp_path / "train.bed"), "--val", str(tmp_path / "val.bed"),
                 "--out", str(tmp_path / "ft"), "--mode", "full", "--epochs", "2", "--batch-size", "4",
                 "--device", "cpu"]) == 0
    err = capfd.readouterr().err
    assert "\r" not in err and "epoch 1: train loss" in err
    names = [ln.split("\t")[1] for ln in (tmp_path / "ft" / "predictions.tsv").read_text().splitlines()[1:]]
    assert "c1:1-40" in names and "c1:1001-1040" in names


def test_info_says_1_contig_not_1_contigs(setup, capsys):
    assert main(["info", str(setup["dir"] / "tokens")]) == 0
    out = capsys.readouterr().out
    assert ": 1 contig, 3,000 bases in 1 shard from " in out and "(1 contig, 3,000 bases)" in out
    assert "contigs" not in out.splitlines()[0] and "(s)" not in out


# ---- 12, 13: --help is fast and shows the defaults --------------------------------------------

def test_help_and_info_do_not_import_torch(setup):
    code = ("import sys\nfrom genomamba.cli import build_parser, main\nbuild_parser()\n"
            "assert 'torch' not in sys.modules, 'build_parser'\n"
            f"assert main(['info', {str(setup['dir'] / 'tokens')!r}, '--json']) == 0\n"
            "assert 'torch' not in sys.modules, 'info'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command, expected", [
    ("finetune", ["--pooling {mean,max,center,mean_center,attention}", "(default: mean_center)", "(default: 32)", "(default: 0.01)",
                  "(default: mcc)", "(default: 0)", "(default: full)"]),
    ("score", ["(default: llr,emb)", "(default: 256)"]),
])
def test_help_shows_every_default(command, expected, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrap
    for words in expected:
        assert words in text, words


# ---- 14, 15: the conda environment and the install notes ----------------------------------------

def _name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_conda_env_pins_exactly_what_pyproject_requires():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        from pip._vendor import tomli as tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {_name(r): Requirement(r) for r in project["dependencies"]}
    env = yaml.safe_load((ROOT / "workflow" / "envs" / "genomamba.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = {_name(r): Requirement(r) for r in pip if not r.startswith("-e")}
    assert set(pinned) == set(required)
    for name, req in pinned.items():
        (spec,) = req.specifier
        assert spec.operator == "==", req
        assert required[name].specifier.contains(spec.version), (req, required[name])
        assert str(req.marker) == str(required[name].marker), name


def test_readme_install_says_what_use_conda_needs_and_where_triton_comes_from():
    text = (ROOT / "README.md").read_text()
    install = text.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "Miniforge" in install and "--use-conda" in install
    assert "CPU-only" in install and "Triton" in install
