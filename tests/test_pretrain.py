"""`genomamba pretrain`: config, masking, window sampling, training, resume, DDP, errors.

CPU only and small: tiny models (d_model 32, 1-2 layers), windows of 256-512 bases.
The training runs use the bundled example genome (S. cerevisiae chrI), tokenized once
per module with 10% validation.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from genomamba.cli import main as cli_main
from genomamba.data import MASK, PAD, Genome
from genomamba.errors import GenomambaError
from genomamba.train.config import load_config
from genomamba.train.masking import IGNORE, mask_tokens
from genomamba.train.sampler import WindowSampler, sampler_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_FASTA = sorted(p for p in (ROOT / "resources").glob("*.f*a*") if not p.name.endswith(".fai"))

# a tiny model and short windows: the settings shared by the training runs below
TINY = [
    "model.d_model=32", "model.n_layer=1", "model.d_state=4", "model.expand=1",
    "model.gradient_checkpointing=false",
    "data.window=256", "data.num_workers=0", "train.batch_size=8", "train.lr=0.004",
    "train.warmup_steps=10", "train.weight_decay=0.01", "train.eval_batches=2",
]


def run_cli(*args) -> tuple[int, str]:
    """Run the genomamba CLI in this process; returns (exit code, stderr text)."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli_main([str(a) for a in args])
    return rc, err.getvalue()


def error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("genomamba: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    assert EXAMPLE_FASTA, "the bundled example genome is missing from resources/"
    out = tmp_path_factory.mktemp("tokens") / "example"
    rc, err = run_cli("tokenize", "--fasta", EXAMPLE_FASTA[0], "--out", out,
                      "--val-fraction", "0.1", "--test-fraction", "0.05", "--quiet")
    assert rc == 0, err
    return out


@pytest.fixture(scope="module")
def gappy(tmp_path_factory) -> Path:
    """A small genome with a long N run, a soft-masked stretch and a contig shorter than a window."""
    folder = tmp_path_factory.mktemp("gappy")
    rng = np.random.default_rng(5)
    bases = np.array(list("ACGT"))
    long = "".join(bases[rng.integers(0, 4, 4000)])
    long = long[:1000] + "N" * 1500 + long[2500:3000].lower() + long[3000:]
    short = "".join(bases[rng.integers(0, 4, 100)])
    (folder / "g.fa").write_text(f">long\n{long}\n>short\n{short}\n")
    rc, err = run_cli("tokenize", "--fasta", folder / "g.fa", "--out", folder / "tok", "--quiet")
    assert rc == 0, err
    return folder / "tok"


# ---- config -------------------------------------------------------------------------

def test_config_layers_defaults_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 77\n  lr: 1e-3\nmodel:\n  d_model: 48\n")
    cfg = load_config(path, ["model.d_model=32", "train.betas=[0.8, 0.9]", "model.d_state=8"])
    assert cfg["train"]["steps"] == 77 and cfg["train"]["lr"] == pytest.approx(1e-3)
    assert cfg["model"]["d_model"] == 32  # the command line wins over the file
    assert cfg["model"]["d_state"] == 8  # any GenoMambaConfig field is accepted
    assert cfg["train"]["betas"] == [0.8, 0.9]
    assert cfg["data"]["window"] == 131072  # untouched defaults stay


@pytest.mark.parametrize("text, overrides, needle", [
    ("train:\n  stepz: 5\n", [], "train.stepz"),
    ("", ["model.d_modle=32"], "model.d_modle"),
    ("", ["optim.lr=1"], "optim"),
    ("", ["train.steps=many"], "train.steps"),
])
def test_config_rejects_unknown_keys_and_bad_types(tmp_path, text, overrides, needle):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(GenomambaError, match=needle.replace(".", r"\.")):
        load_config(path, overrides)


# ---- masking --------------------------------------------------------------------------

def test_masking_chooses_15_percent_of_bases_80_10_10():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 4, size=(64, 1024)).astype(np.uint8)
    tokens[:, :100] = 4  # N: never a target
    tokens[:, -50:] = PAD  # padding: never a target
    soft = np.zeros(tokens.shape, bool)
    soft[:, 200:400] = True
    inputs, labels, w = mask_tokens(tokens, soft, rng, softmask_weight=0.25)
    targets = labels != IGNORE
    eligible = tokens < 4
    assert not targets[~eligible].any()
    assert targets[eligible].mean() == pytest.approx(0.15, abs=0.01)
    assert np.array_equal(labels[targets], tokens[targets])
    masked = inputs[targets] == MASK
    unchanged = inputs[targets] == tokens[targets]
    random_base = ~masked & ~unchanged  # random bases that differ from the original
    assert masked.mean() == pytest.approx(0.8, abs=0.02)
    # 10% random (3/4 of which differ from the original) + 10% unchanged (+ 1/4 of the random)
    assert random_base.mean() == pytest.approx(0.075, abs=0.01)
    assert unchanged.mean() == pytest.approx(0.125, abs=0.01)
    assert np.array_equal(inputs[~targets], tokens[~targets].astype(np.int64))
    assert set(np.unique(w[targets & soft])) == {0.25}
    assert set(np.unique(w[targets & ~soft])) == {1.0}
    assert not w[~targets].any()


# ---- sampler --------------------------------------------------------------------------

def sampler_cfg(**data):
    cfg = load_config(None, ["data.window=256", "train.batch_size=16", "data.min_interval=64"])
    cfg["data"].update(data)
    return cfg


def test_sampler_is_seeded_resumable_and_differs_between_ranks(example):
    src = [{"path": str(example), "weight": 1.0}]
    settings = sampler_settings(sampler_cfg())
    a = WindowSampler(src, "train", settings, rank=0)
    b = WindowSampler(src, "train", settings, rank=0)
    other = WindowSampler(src, "train", settings, rank=1)
    for key in ("input_ids", "labels", "weights"):
        assert np.array_equal(a.batch(7)[key], b.batch(7)[key])  # a pure function of the index
    assert not np.array_equal(a.batch(7)["labels"], a.batch(8)["labels"])
    assert not np.array_equal(a.batch(7)["labels"], other.batch(7)["labels"])
    # every window lies in the train split
    genome = Genome(example)
    (contig, t0, t1), = genome.intervals("train")
    rng = a.rng(3)
    for _ in range(20):
        tokens, _, (_, name, start, end, strand) = a.window_at(rng)
        assert name == contig and t0 <= start and end <= t1 and end - start == 256 and strand == "+"
        assert np.array_equal(tokens, genome.fetch(name, start, end))


def test_sampler_skips_n_windows_pads_short_contigs_and_flips_strands(gappy):
    genome = Genome(gappy)
    sampler = WindowSampler([{"path": str(gappy)}], "train",
                            sampler_settings(sampler_cfg(max_n_fraction=0.1)),
                            rc_augment=True)
    rng = sampler.rng(0)
    strands, shorts = set(), 0
    for _ in range(200):
        tokens, soft, (_, name, start, end, strand) = sampler.window_at(rng)
        real = tokens[tokens != PAD]
        assert np.mean(real == 4) <= 0.1
        strands.add(strand)
        expect = genome.fetch(name, start, end, strand)
        assert np.array_equal(real, expect)
        expect_soft = genome.softmask(name, start, end)
        assert np.array_equal(soft[: end - start], expect_soft if strand == "+" else expect_soft[::-1])
        if name == "short":
            shorts += 1
            assert end - start == 100 and (tokens[100:] == PAD).all()
    assert strands == {"+", "-"} and shorts > 0
    batch = sampler.batch(0)
    assert not (batch["labels"][batch["input_ids"] == PAD] != IGNORE).any()


# ---- training ---------------------------------------------------------------------------

def composition(tokens: np.ndarray) -> np.ndarray:
    counts = np.bincount(tokens, minlength=7)[:4].astype(np.float64)
    return counts / counts.sum()


def entropy(p: np.ndarray) -> float:
    return float(-(p * np.log(p)).sum())


def test_tiny_model_learns_more_than_base_composition(example, tmp_path):
    run = tmp_path / "run"
    rc, err = run_cli("pretrain", "--data", example, "--out", run, *TINY,
                      "train.steps=200", "train.eval_every=100", "train.log_every=25",
                      "train.checkpoint_every=200", "train.eval_batches=16")
    assert rc == 0, err
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r["split"] == "val"]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in val] == [100, 200]
    assert [r["step"] for r in train] == list(range(25, 201, 25))
    for r in train:
        assert r["tokens_per_s"] > 0 and 0 < r["lr"] <= 0.004 and r["peak_mem_gb"] is None

    # Context-free baselines, from the data: the order-0 entropy of the genome, and the
    # cross-entropy that the val split's own base composition (the best context-free
    # predictor there) scores on exactly the [MASK] targets of the validation batches.
    genome = Genome(example)
    whole = np.concatenate([genome.fetch(c, 0, genome.length(c)) for c in genome.contigs])
    (contig, start, end), = genome.intervals("val")
    p_val = composition(genome.fetch(contig, start, end))
    cfg = load_config(run / "config.yaml")
    sampler = WindowSampler(cfg["data"]["sources"], "val", sampler_settings(cfg), rank=0)
    shown = [sampler.batch(b) for b in range(cfg["train"]["eval_batches"])]
    masked = np.concatenate([b["labels"][b["input_ids"] == MASK] for b in shown])
    assert masked.size == pytest.approx(val[-1]["targets"] * 0.8, rel=0.05)
    baseline = float(-np.log(p_val[masked]).mean())
    h0 = entropy(composition(whole))
    # predicting [MASK]ed bases from their context beats every context-free predictor
    assert val[-1]["mask_ce"] < min(h0, baseline) - 0.005, (val[-1], h0, baseline)
    assert val[-1]["ppl"] == pytest.approx(math.exp(val[-1]["ce"]))
    assert val[-1]["mask_acc"] > float(p_val.max())  # better than always the commonest base

    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_val"]["mask_ce"] == pytest.approx(val[-1]["mask_ce"])
    assert (run / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from genomamba.model import GenoMambaForMaskedLM

    model = GenoMambaForMaskedLM.from_pretrained(run / "model")
    assert (model.config.d_model, model.config.n_layer, model.config.d_state) == (32, 1, 4)
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-00000200.pt"]


def test_resume_is_bit_exact(example, tmp_path):
    common = [*TINY, "train.steps=20", "train.log_every=5", "train.eval_every=10",
              "train.checkpoint_every=5", "train.keep_checkpoints=3"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_cli("pretrain", "--data", example, "--out", straight, *common)[0] == 0
    assert run_cli("pretrain", "--data", example, "--out", split, "--stop-at", "10", *common)[0] == 0
    assert not (split / "model").exists()  # stopped early: no final model yet
    assert sorted(p.name for p in (split / "checkpoints").iterdir()) == [
        "step-00000005.pt", "step-00000010.pt"]
    # resume with the run's saved settings; the data loader now runs in a worker process
    rc, err = run_cli("pretrain", "--out", split, "--resume", "data.num_workers=1")
    assert rc == 0, err
    a, b = weights(straight / "model"), weights(split / "model")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the metrics of both halves join up into the straight run's
    strip = lambda path: [{k: v for k, v in json.loads(x).items() if k not in ("tokens_per_s", "elapsed_s")}
                          for x in path.read_text().splitlines()]
    assert strip(split / "metrics.jsonl") == strip(straight / "metrics.jsonl")


def test_two_process_gloo_run_keeps_ranks_identical(example, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(
        "import os, sys, torch\n"
        "from genomamba.cli import build_parser\n"
        "from genomamba.train.commands import pretrain_config\n"
        "from genomamba.train.distributed import setup, teardown\n"
        "from genomamba.train.pretrain import run_pretraining\n"
        "args = build_parser().parse_args(sys.argv[1:])\n"
        "env = setup()\n"
        "result = run_pretraining(pretrain_config(args), args.out, env=env)\n"
        "torch.save(result.model.state_dict(), os.path.join(os.path.dirname(args.out), f'rank{env.rank}.pt'))\n"
        "teardown()\n"
    )
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script), "pretrain", "--data", str(example), "--out", str(run), *TINY,
           "train.steps=6", "train.log_every=3", "train.eval_every=6",
           "train.checkpoint_every=6"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    for key in r0:
        assert torch.equal(r0[key], r1[key]), key
    exported = weights(run / "model")
    assert all(torch.equal(exported[k], r0[k]) for k in exported)
    initial = torch.load(run / "checkpoints" / "step-00000006.pt", weights_only=False)
    assert initial["world_size"] == 2 and len(initial["rng"]) == 2
    # each rank contributed its own windows: 2 x 8 windows of 256 per step
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["targets"] > 0.15 * 3 * 2 * 8 * 256 * 0.8


# ---- errors ------------------------------------------------------------------------------

def test_truncated_checkpoint_is_a_clear_error(example, tmp_path):
    run = tmp_path / "run"
    args = [*TINY, "train.steps=4", "train.checkpoint_every=2",
            "train.eval_every=100"]
    assert run_cli("pretrain", "--data", example, "--out", run, "--stop-at", "2", *args)[0] == 0
    ckpt = run / "checkpoints" / "step-00000002.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    rc, err = run_cli("pretrain", "--out", run, "--resume")
    assert rc == 1
    line = error_line(err)
    assert str(ckpt) in line and "truncated or corrupt" in line


def test_missing_shard_is_a_clear_error(example, tmp_path):
    broken = tmp_path / "tokens"
    shutil.copytree(example, broken)
    shard = sorted(broken.glob("*.h5"))[0]
    shard.unlink()
    rc, err = run_cli("pretrain", "--data", broken, "--out", tmp_path / "run", *TINY)
    assert rc == 1
    assert shard.name in error_line(err)


def test_unknown_config_key_is_a_clear_error(example, tmp_path):
    cfg = tmp_path / "pretrain.yaml"
    cfg.write_text(yaml.safe_dump({"train": {"stpes": 10}}))
    rc, err = run_cli("pretrain", "--data", example, "--out", tmp_path / "run", "--config", cfg)
    assert rc == 1
    line = error_line(err)
    assert str(cfg) in line and "train.stpes" in line
    assert not (tmp_path / "run").exists()


def test_nan_loss_stops_with_an_error_and_a_checkpoint(example, tmp_path, monkeypatch):
    import genomamba.train.pretrain as pretrain

    real = pretrain.masked_loss
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        loss, stats = real(*args)
        return (loss * float("nan") if calls["n"] == 3 else loss), stats

    monkeypatch.setattr(pretrain, "masked_loss", poisoned)
    run = tmp_path / "run"
    rc, err = run_cli("pretrain", "--data", example, "--out", run, *TINY,
                      "train.steps=10", "train.eval_every=100")
    assert rc == 1
    assert "nan at step 3" in error_line(err)
    state = torch.load(run / "checkpoints" / "step-00000002.pt", weights_only=False)
    assert state["step"] == 2 and state["sampler"]["next_batch"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())


# ---- Snakemake rule and SLURM profile ---------------------------------------------------

def snakemake_dry_run(workdir: Path, *args) -> str:
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", *args], cwd=workdir,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


def test_snakemake_rule_and_slurm_profile_plan_torchrun(tmp_path):
    for part in ("config", "workflow", "resources", "profiles"):
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / part)
    config = yaml.safe_load((tmp_path / "config" / "config.yaml").read_text())
    config["genomes"]["second"] = dict(config["genomes"]["example"])
    config["pretrain"]["big"] = {"genomes": {"example": 1.0, "second": 3.0}, "gpus": 2,
                                 "overrides": {"train": {"steps": 7}, "model.rc_mode": "ph"}}
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))

    out = snakemake_dry_run(tmp_path, "--cores", "2", "results/pretrain/big/model/config.json",
                            "results/pretrain/tiny/model/config.json")
    big = next(ln for ln in out.splitlines() if "--out results/pretrain/big" in ln)
    assert "--nproc-per-node $(( 2 > 0 ? 2 : 1 ))" in big and "-m genomamba pretrain" in big
    assert "--data results/tokens/example:1.0 --data results/tokens/second:3.0" in big
    assert "train.steps=7" in big and "model.rc_mode=ph" in big and "--resume auto" in big
    tiny = next(ln for ln in out.splitlines() if "--out results/pretrain/tiny" in ln)
    assert "--nproc-per-node $(( 0 > 0 ? 0 : 1 ))" in tiny
    for key, value in config["pretrain"]["tiny"]["overrides"].items():
        assert f"{key}={json.dumps(value) if isinstance(value, bool) else value}" in tiny

    # GPUs, runtime and memory come from the config/config.yaml entry, cores and the account and
    # partition from the SLURM profile; the other rules get the profile's defaults
    out = snakemake_dry_run(tmp_path, "--profile", "profiles/slurm", "results/pretrain/tiny/model/config.json")
    resources = [ln for ln in out.splitlines() if ln.strip().startswith("resources:")]
    pretrain_res = next(ln for ln in resources if "gpu=" in ln)
    for expect in ("gpu=0", "cpus_per_task=16", "slurm_account=", "slurm_partition=", "runtime=30", "mem_mb=4000"):
        assert expect in pretrain_res, pretrain_res
    other = [ln for ln in resources if "gpu=" not in ln]
    assert other and all("runtime=60" in ln and "slurm_account=" in ln for ln in other)
