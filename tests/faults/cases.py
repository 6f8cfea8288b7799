"""The commands under test, each on small inputs in its own work directory.

Inputs are made in this process (a 3 kb random genome, a tiny masked-LM with perturbed
weights, a VCF of SNVs, BED regions, token shards); every command then runs as
``python -m genomamba ...`` from its work directory, so that relative paths (and with them
the command lines recorded in the outputs) are the same in every run. Each work directory
also holds an earlier complete output of the same kind beside the new one (``out/earlier*``),
which no run may touch.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np

from faults.harness import Case, json_lines

KILLS = 10  # per command
SEED = 24
LENGTH = 3000
TINY_PRETRAIN = ["model.d_model=8", "model.n_layer=1", "model.d_state=4", "model.expand=1",
                 "model.gradient_checkpointing=false", "data.window=64", "data.min_interval=64",
                 "data.num_workers=0", "train.steps=12", "train.batch_size=2", "train.warmup_steps=1",
                 "train.log_every=3", "train.eval_every=3", "train.eval_batches=1",
                 "train.checkpoint_every=3", "train.keep_checkpoints=2"]


def _genome(folder: Path) -> str:
    rng = np.random.default_rng(24)
    seq = "".join(rng.choice(list("ACGT"), size=LENGTH))
    (folder / "ref.fa").write_text(">c1 test\n" + "\n".join(seq[i:i + 60] for i in range(0, LENGTH, 60)) + "\n")
    return seq


def _tiny_model(path: Path) -> None:
    import torch

    from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

    torch.manual_seed(24)
    model = GenoMambaForMaskedLM(GenoMambaConfig(d_model=8, n_layer=1, d_state=4, rc_mode="ps"))
    with torch.no_grad():  # off the symmetric initialisation, so that scores differ by position
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(path, training={"window": 64})


def _vcf(folder: Path, seq: str) -> None:
    rows = []
    for i, pos in enumerate(range(60, LENGTH - 60, 97)):
        ref = seq[pos - 1]
        alt = "ACGT"[("ACGT".index(ref) + 1 + i % 3) % 4]
        rows.append(f"c1\t{pos}\tv{pos}\t{ref}\t{alt}\t.\t.\t.")
    (folder / "in.vcf").write_text(
        f"##fileformat=VCFv4.2\n##contig=<ID=c1,length={LENGTH}>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        + "\n".join(rows) + "\n")


def _bed(folder: Path) -> None:
    rng = np.random.default_rng(7)
    lines = []
    for i in range(48):
        start = int(rng.integers(0, LENGTH - 64))
        lines.append(f"c1\t{start}\t{start + 64}\t{'a' if i % 2 else 'b'}\n")
    (folder / "train.bed").write_text("".join(lines[:32]))
    (folder / "val.bed").write_text("".join(lines[32:]))


def _earlier_vcf(out: Path) -> None:
    import pysam

    pysam.tabix_compress(str(out.parent / "in" / "in.vcf"), str(out / "earlier.vcf.gz"))
    pysam.tabix_index(str(out / "earlier.vcf.gz"), preset="vcf")


def _earlier_json(out: Path) -> None:
    (out / "earlier.json").write_text(json.dumps({"an": "earlier output"}) + "\n")


def _workdir(base: Path, name: str) -> tuple[Path, Path, Path, str]:
    work = base / name
    (work / "in").mkdir(parents=True)
    (work / "out").mkdir()
    seq = _genome(work / "in")
    return work, work / "in", work / "out", seq


# ---- validators of intermediate files ---------------------------------------------------

def _checkpoint_ok(path: Path, ref) -> str | None:
    """A training checkpoint left beside the run: loads (weights only) and holds its step."""
    from genomamba.errors import GenomambaError
    from genomamba.train.checkpoint import load_checkpoint

    try:
        state = load_checkpoint(path)
    except GenomambaError as exc:
        return f"{path.name}: a checkpoint that does not load: {exc}"
    step = int(re.search(r"(\d+)", path.name).group(1))
    return None if state["step"] == step else f"{path.name}: holds step {state['step']}"


def _metrics_ok(path: Path, ref) -> str | None:
    """metrics.jsonl grows line by line: its lines are the uninterrupted run's first lines."""
    try:
        have = json_lines(path.read_text())
    except ValueError:
        return f"{path}: a line that is not JSON"
    want = json_lines(ref["out/run/metrics.jsonl"].decode())
    return None if have == want[:len(have)] else f"{path}: lines differ from the uninterrupted run's"


def same_state(a: bytes, b: bytes) -> bool:
    """Two training checkpoints hold the same values (tensors bit for bit). Their bytes may
    differ: pickle shares equal strings that are one object, and a resumed run's keys are
    strings read back from the checkpoint (as is the zip's serialization id, a checksum)."""
    import io

    import torch

    def same(x, y) -> bool:
        if isinstance(x, torch.Tensor):
            return isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
        if isinstance(x, dict):
            return isinstance(y, dict) and list(x) == list(y) and all(same(x[k], y[k]) for k in x)
        if isinstance(x, (list, tuple)):
            return type(x) is type(y) and len(x) == len(y) and all(map(same, x, y))
        return type(x) is type(y) and x == y

    return same(torch.load(io.BytesIO(a), weights_only=True), torch.load(io.BytesIO(b), weights_only=True))


def _same_bytes(rel: str):
    def check(path: Path, ref) -> str | None:
        return None if path.read_bytes() == ref[rel] else f"{rel}: differs from the uninterrupted run's"
    return check


def _part_ok(path: Path, ref) -> str | None:
    """A finished part of `track`: an (n, 4) float array of log-probabilities."""
    try:
        values = np.load(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
        return f"{path.name}: unreadable part ({exc})"
    return None if values.ndim == 2 and values.shape[1] == 4 else f"{path.name}: shape {values.shape}"


def _json_ok(path: Path, ref) -> str | None:
    try:
        json.loads(path.read_text())
    except ValueError:
        return f"{path}: not JSON"
    return None


# ---- the cases ------------------------------------------------------------------------------

def tokenize_case(base: Path) -> Case:
    from genomamba.cli import main

    work, inp, out, _ = _workdir(base, "tokenize")
    rng = np.random.default_rng(3)  # a bigger genome of 8 contigs, so that there are 4 shards
    with open(inp / "genome.fa", "w") as fh:
        for c in range(8):
            seq = "".join(rng.choice(list("ACGTacgtN"), size=20000, p=[.22] * 4 + [.02] * 4 + [.04]))
            fh.write(f">chr{c}\n" + "\n".join(seq[i:i + 80] for i in range(0, len(seq), 80)) + "\n")
    assert main(["tokenize", "--fasta", str(inp / "ref.fa"), "--out", str(out / "earlier"), "--quiet"]) == 0
    return Case("tokenize", work, ["tokenize", "--fasta", "in/genome.fa", "--out", "out/tokens", "--val-fraction",
                                   "0.1", "--shard-size", "40K", "--chunk-size", "1024", "--quiet"],
                watch=["in", "out"], finals=["out/tokens"], units=["out/tokens"])


def pretrain_case(base: Path) -> Case:
    from genomamba.cli import main

    work, inp, out, _ = _workdir(base, "pretrain")
    assert main(["tokenize", "--fasta", str(inp / "ref.fa"), "--out", str(inp / "tokens"),
                 "--val-fraction", "0.2", "--quiet"]) == 0
    _earlier_json(out)

    def newest_checkpoint(workdir: Path, ref) -> list[str]:
        names = sorted(r for r in ref if r.startswith("out/run/checkpoints/"))
        have = workdir / names[-1]
        if not have.exists():
            return [f"{names[-1]}: missing after a completed run"]
        errors = [] if same_state(have.read_bytes(), ref[names[-1]]) else [
            f"{names[-1]}: holds other values than the uninterrupted run's"]
        if _metrics_ok(workdir / "out/run/metrics.jsonl", ref) or \
                len(json_lines((workdir / "out/run/metrics.jsonl").read_text())) != \
                len(json_lines(ref["out/run/metrics.jsonl"].decode())):
            errors.append("out/run/metrics.jsonl: differs from the uninterrupted run's (timings aside)")
        return errors

    # --resume auto: continue from the newest checkpoint, or start afresh when there is none
    return Case("pretrain", work, ["pretrain", "--data", "in/tokens", "--out", "out/run", "--resume", "auto",
                                   *TINY_PRETRAIN],
                watch=["in", "out"], finals=["out/run/model", "out/run/loss_curve.png", "out/run/summary.json"],
                units=["out/run/model"], json_files=["out/run/summary.json"],
                intermediates={r"out/run/checkpoints/step-\d{8}\.pt": _checkpoint_ok,
                               r"out/run/metrics\.jsonl": _metrics_ok,
                               r"out/run/config\.yaml": _same_bytes("out/run/config.yaml")},
                may_vanish=[r"out/run/checkpoints/step-\d{8}\.pt", r"out/run/metrics\.jsonl"],
                growing=[r"out/run/metrics\.jsonl"], compare_extra=newest_checkpoint)


def finetune_case(base: Path) -> Case:
    work, inp, out, _ = _workdir(base, "finetune")
    _tiny_model(inp / "mlm")
    _bed(inp)
    _earlier_json(out)
    return Case("finetune", work, ["finetune", "--model", "in/mlm", "--genome", "in/ref.fa", "--train", "in/train.bed",
                                   "--val", "in/val.bed", "--test", "in/val.bed", "--out", "out/ft",
                                   "--device", "cpu", "mode=probe", "epochs=3"],
                watch=["in", "out"], finals=["out/ft/model", "out/ft/metrics.json", "out/ft/predictions.tsv",
                                             "out/ft/scores.png", "in/ref.fa.fai"],
                units=["out/ft/model"], json_files=["out/ft/metrics.json"])


def score_case(base: Path) -> Case:
    work, inp, out, seq = _workdir(base, "score")
    _tiny_model(inp / "mlm")
    _vcf(inp, seq)
    _earlier_vcf(out)
    return Case("score", work, ["score", "--model", "in/mlm", "--reference", "in/ref.fa", "--vcf", "in/in.vcf",
                                "--out", "out/scored.vcf.gz", "--device", "cpu", "window=64"],
                watch=["in", "out"], finals=["out/scored.vcf.gz", "out/scored.vcf.gz.tbi", "out/scored.summary.json",
                                             "out/scored.scores.png", "in/ref.fa.fai"],
                json_files=["out/scored.summary.json"],
                # the old index, summary and plot are removed just before the new VCF is renamed
                # into place (so that none describes another file): until they are rewritten, the
                # VCF has no index and the set no summary (which marks it finished)
                may_vanish=[r"out/scored\.vcf\.gz\.tbi", r"out/scored\.summary\.json", r"out/scored\.scores\.png"])


def track_case(base: Path) -> Case:
    import pyBigWig

    work, inp, out, _ = _workdir(base, "track")
    _tiny_model(inp / "mlm")
    with pyBigWig.open(str(out / "earlier.bw"), "w") as bw:
        bw.addHeader([("c1", LENGTH)])
        bw.addEntries("c1", 0, values=[0.5] * 10, span=1, step=1)
    return Case("track", work, ["track", "--model", "in/mlm", "--reference", "in/ref.fa", "--out", "out/t.bw",
                                "--all-alts", "out/alts.tsv.gz", "--window", "31", "--device", "cpu",
                                "part_size=300"],
                watch=["in", "out"], finals=["out/t.bw", "out/alts.tsv.gz", "out/alts.tsv.gz.tbi", "in/ref.fa.fai"],
                intermediates={r"out/t\.bw\.parts/part-\d{6}\.npy": _part_ok,
                               r"out/t\.bw\.parts/parts\.json": _json_ok},
                may_vanish=[r"out/t\.bw\.parts/.*"])


def embed_case(base: Path) -> Case:
    import h5py

    work, inp, out, _ = _workdir(base, "embed")
    _tiny_model(inp / "mlm")
    _bed(inp)
    with h5py.File(out / "earlier.h5", "w") as f:
        f["embeddings"] = np.arange(12, dtype=np.float32).reshape(3, 4)
    return Case("embed", work, ["embed", "--model", "in/mlm", "--bed", "in/train.bed", "--genome", "in/ref.fa",
                                "--out", "out/e.h5", "--device", "cpu"],
                watch=["in", "out"], finals=["out/e.h5", "in/ref.fa.fai"])


def evaluate_case(base: Path) -> Case:
    import pysam

    work, inp, out, seq = _workdir(base, "evaluate")
    rng = np.random.default_rng(5)
    header = pysam.VariantHeader()
    header.contigs.add("c1", length=LENGTH)
    header.info.add("GM_LLR", "A", "Float", "score")
    labels = ["CHROM\tPOS\tREF\tALT\tlabel"]
    with pysam.VariantFile(str(inp / "scored.vcf.gz"), "wz", header=header) as vf:
        for i, pos in enumerate(range(20, LENGTH - 20, 31)):
            ref = seq[pos - 1]
            alt = "ACGT"[("ACGT".index(ref) + 1 + i % 3) % 4]
            label = ["stop_gained", "synonymous", "synonymous", "missense"][i % 4]
            llr = round(float(rng.normal(-1.0 if label == "stop_gained" else 0.0)), 2)
            vf.write(vf.new_record(contig="c1", start=pos - 1, alleles=(ref, alt), info={"GM_LLR": (llr,)}))
            labels.append(f"c1\t{pos}\t{ref}\t{alt}\t{label}")
    (inp / "labels.tsv").write_text("\n".join(labels) + "\n")
    shutil.copytree(inp, out / "earlier_inputs")  # any earlier files beside the new output
    return Case("evaluate", work, ["evaluate", "--vcf", "in/scored.vcf.gz", "--labels", "in/labels.tsv",
                                   "--out", "out/eval", "--positive", "stop_gained", "--negative", "synonymous",
                                   "--reference", "in/ref.fa", "--stratify", "substitution", "bootstrap=100"],
                watch=["in", "out"], finals=["out/eval/metrics.json", "out/eval/report.md", "out/eval/roc.png",
                                             "in/ref.fa.fai"],
                json_files=["out/eval/metrics.json"])


# longest first, so that two workers finish at about the same time
CASES = {"pretrain": pretrain_case, "finetune": finetune_case, "score": score_case, "track": track_case,
         "embed": embed_case, "evaluate": evaluate_case, "tokenize": tokenize_case}
