"""A small, complete set of inputs for running every genomamba command at the CLI, shared by
the disk-full, corruption and output-lock tests (tests/test_disk_full.py, test_corruption.py,
test_output_lock.py).

``build(directory)`` writes a random 6,000-base genome (FASTA and token shards), a tiny
masked LM, a fine-tuned probe, a VCF of SNVs, its scored copy (indexed), labels and sequence
sets; ``commands(env, out_dir)`` gives, for each command, the argument list that writes its
output under ``out_dir`` and the output path. Everything is small: each command runs in a
few seconds on one CPU core.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

LENGTH = 6000
WINDOW = 31
# a tiny pretraining run: two steps, a checkpoint after each
PRETRAIN = ["model.d_model=8", "model.n_layer=1", "model.d_state=4", "model.expand=1",
            "model.gradient_checkpointing=false", "data.window=128", "data.num_workers=0",
            "data.min_interval=128", "train.batch_size=2", "train.steps=2", "train.warmup_steps=1",
            "train.eval_every=2", "train.eval_batches=1", "train.checkpoint_every=1", "train.log_every=1"]


def cli(*args) -> tuple[int, str]:
    """Run the CLI in this process; (exit code, stderr)."""
    from genomamba.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main([str(a) for a in args])
    return rc, err.getvalue()


_SHARED: dict = {}


def shared(tmp_path_factory) -> dict:
    """One ``build`` per test session, for every module that uses it (none writes into it)."""
    if "env" not in _SHARED:
        _SHARED["env"] = build(tmp_path_factory.mktemp("io_env"))
    return _SHARED["env"]


def build(d: Path) -> dict:
    import torch

    from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

    d = Path(d)
    rng = np.random.default_rng(11)
    seq = "".join(rng.choice(list("ACGT"), size=LENGTH))
    lines = [seq[i:i + 60] for i in range(0, LENGTH, 60)]
    (d / "ref.fa").write_text(">c1 test\n" + "\n".join(lines) + "\n")
    rc, err = cli("tokenize", "--fasta", d / "ref.fa", "--out", d / "tokens", "--quiet", "--val-fraction", "0.2",
                  "--chunk-size", "1024")
    assert rc == 0, err
    torch.manual_seed(0)
    GenoMambaForMaskedLM(GenoMambaConfig(d_model=8, n_layer=1, d_state=4, rc_mode="ps")).save_pretrained(d / "model")
    # sequence sets: 24 of 40 bases, two classes that differ in GC content
    for name, n in (("train", 24), ("val", 12)):
        rows = ["sequence\tlabel"]
        for i in range(n):
            label = i % 2
            probs = [0.4, 0.1, 0.1, 0.4] if label == 0 else [0.1, 0.4, 0.4, 0.1]
            rows.append("".join(rng.choice(list("ACGT"), size=40, p=probs)) + f"\t{'at' if label == 0 else 'gc'}")
        (d / f"{name}.tsv").write_text("\n".join(rows) + "\n")
    rc, err = cli("finetune", "--model", d / "model", "--train", d / "train.tsv", "--val", d / "val.tsv",
                  "--out", d / "head", "--mode", "probe", "--epochs", "2", "--device", "cpu")
    assert rc == 0, err
    # SNVs at every 50th base, labelled alternately
    other = lambda b: "ACGT"[("ACGT".index(b) + 1) % 4]  # noqa: E731
    vcf = ["##fileformat=VCFv4.2", f"##contig=<ID=c1,length={LENGTH}>",
           "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    labels = ["CHROM\tPOS\tREF\tALT\tlabel"]
    for k, pos in enumerate(range(100, LENGTH - 100, 120)):
        ref = seq[pos - 1]
        vcf.append(f"c1\t{pos}\tv{k}\t{ref}\t{other(ref)}\t.\t.\t.")
        labels.append(f"c1\t{pos}\t{ref}\t{other(ref)}\t{'bad' if k % 2 else 'ok'}")
    (d / "in.vcf").write_text("\n".join(vcf) + "\n")
    (d / "labels.tsv").write_text("\n".join(labels) + "\n")
    (d / "regions.bed").write_text("c1\t100\t400\n")
    env = {"dir": d, "seq": seq, "fasta": str(d / "ref.fa"), "tokens": str(d / "tokens"),
           "model": str(d / "model"), "head": str(d / "head"), "vcf": str(d / "in.vcf"),
           "labels": str(d / "labels.tsv"), "regions": str(d / "regions.bed")}
    rc, err = cli(*commands(env, d)["score"][0])
    assert rc == 0, err
    env["scored"] = str(d / "scored.vcf.gz")
    return env


def commands(env: dict, out: Path) -> dict:
    """command -> (argv, output path) writing under ``out``."""
    out = Path(out)
    return {
        "tokenize": (["tokenize", "--fasta", env["fasta"], "--out", out / "tokens", "--quiet",
                      "--chunk-size", "1024", "--compression", "none"], out / "tokens"),
        "pretrain": (["pretrain", "--data", env["tokens"], "--out", out / "run", *PRETRAIN], out / "run"),
        "finetune": (["finetune", "--model", env["model"], "--train", env["dir"] / "train.tsv",
                      "--val", env["dir"] / "val.tsv", "--out", out / "ft", "--mode", "probe",
                      "--epochs", "2", "--device", "cpu"], out / "ft"),
        "score": (["score", "--model", env["model"], "--reference", env["tokens"], "--vcf", env["vcf"],
                   "--out", out / "scored.vcf.gz", "--window", str(WINDOW), "--device", "cpu",
                   "--head", env["head"]], out / "scored.vcf.gz"),
        "track": (["track", "--model", env["model"], "--reference", env["tokens"], "--regions", env["regions"],
                   "--out", out / "t.bw", "--window", str(WINDOW), "--device", "cpu"], out / "t.bw"),
        "embed": (["embed", "--model", env["model"], "--tsv", env["dir"] / "train.tsv", "--out", out / "emb.h5",
                   "--device", "cpu", "--pooling", "none"], out / "emb.h5"),
        "evaluate": (["evaluate", "--vcf", env.get("scored", out / "scored.vcf.gz"), "--labels", env["labels"],
                      "--out", out / "eval", "--positive", "bad", "--negative", "ok", "bootstrap=20"],
                     out / "eval"),
    }


def run_cli_process(argv, preexec_fn=None, timeout=120, **kw) -> subprocess.CompletedProcess:
    """The real CLI in a fresh process, one thread (the machine is shared)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "genomamba", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, env=env, preexec_fn=preexec_fn, **kw)


def error_line(stderr: str) -> str:
    """The one line of stderr, which must be ``genomamba: error: ...``; no traceback."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("genomamba: error: "), stderr
    return lines[0]
