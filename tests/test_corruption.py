"""Corruption is detected, not trusted: bytes flipped in a token shard, a training checkpoint,
a model's weights or a scored VCF's index make the command that reads them stop with one line
naming the file (and, for a shard, the contig), exit 1, instead of loading wrong data or
printing a traceback."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import h5py
import pytest

import io_env


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return io_env.shared(tmp_path_factory)


def flip(path: Path, offset: int, n: int = 16) -> None:
    """Invert ``n`` bytes of ``path`` from ``offset``."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        data = fh.read(n)
        assert len(data) == n
        fh.seek(offset)
        fh.write(bytes(b ^ 0xFF for b in data))


def chunk_offset(shard: Path, dataset: str, index: int = 1) -> tuple[int, int]:
    """(byte offset, size) of one stored chunk of a dataset in an HDF5 file."""
    with h5py.File(shard, "r") as f:
        info = f[dataset].id.get_chunk_info(index)
        return info.byte_offset, info.size


def tokens(env, tmp_path, compression: str) -> Path:
    out = tmp_path / f"tokens_{compression}"
    rc, err = io_env.cli("tokenize", "--fasta", env["fasta"], "--out", out, "--quiet", "--chunk-size", "1024",
                         "--compression", compression)
    assert rc == 0, err
    return out


def test_info_verify_finds_flipped_bases_in_an_uncompressed_shard(env, tmp_path):
    out = tokens(env, tmp_path, "none")
    assert io_env.cli("info", out, "--verify")[0] == 0
    offset, size = chunk_offset(out / "shard-00000.h5", "contigs/0/tokens", 2)
    flip(out / "shard-00000.h5", offset + size // 2)  # still valid tokens' bytes? no: inverted, all >= 249
    rc, err = io_env.cli("info", out, "--verify")
    assert rc == 1
    line = io_env.error_line(err)
    assert str(out) in line and "c1 (in shard-00000.h5)" in line and "SHA-256 mismatch" in line


def test_a_chunk_that_no_longer_decompresses_is_one_line_naming_shard_and_contig(env, tmp_path):
    out = tokens(env, tmp_path, "bitshuffle")
    shard = out / "shard-00000.h5"
    offset, size = chunk_offset(shard, "contigs/0/tokens", 1)
    flip(shard, offset + 4, min(32, size - 8))
    # on demand: info --verify marks the contig and names it
    rc, err = io_env.cli("info", out, "--verify")
    assert rc == 1 and "c1 (in shard-00000.h5)" in io_env.error_line(err)
    # on use: score reads windows from the shard (the VCF's variants cover the damaged chunk)
    argv, scored = io_env.commands({**env, "tokens": str(out)}, tmp_path / "o")["score"]
    rc, err = io_env.cli(*argv)
    assert rc == 1
    line = io_env.error_line(err)
    assert f"{shard}, record 'c1': cannot read tokens" in line and "corrupt" in line
    assert not scored.exists()


def test_a_checkpoint_with_flipped_tensor_bytes_is_refused(env, tmp_path):
    argv, run = io_env.commands(env, tmp_path)["pretrain"]
    rc, err = io_env.cli(*argv, "--stop-at", "1")
    assert rc == 0, err
    checkpoint = run / "checkpoints" / "step-00000001.pt"
    with zipfile.ZipFile(checkpoint) as archive:  # the largest tensor record
        record = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(checkpoint, "rb") as fh:  # data start: after the local header, its name and extra field
        fh.seek(record.header_offset + 26)
        name_len, extra_len = int.from_bytes(fh.read(2), "little"), int.from_bytes(fh.read(2), "little")
    flip(checkpoint, record.header_offset + 30 + name_len + extra_len + record.file_size // 2, 4)
    for command in (["pretrain", *argv[1:], "--resume"],  # resuming from it
                    ["score", *io_env.commands({**env, "model": str(checkpoint)}, tmp_path / "o")["score"][0][1:]]):
        rc, err = io_env.cli(*command)
        assert rc == 1, command
        line = io_env.error_line(err)
        assert str(checkpoint) in line and "corrupt" in line and record.filename.split("/", 1)[1] in line
    assert not (run / "model").exists() and not (tmp_path / "o").exists()


def test_a_model_with_flipped_weight_bytes_is_refused_by_every_reader(env, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(env["model"], model)
    weights = model / "model.safetensors"
    flip(weights, weights.stat().st_size - 64, 8)  # inside the tensor data: safetensors itself cannot tell
    runs = io_env.commands({**env, "model": str(model)}, tmp_path / "o")
    for command in ("score", "embed", "finetune", "track"):
        rc, err = io_env.cli(*runs[command][0])
        assert rc == 1, command
        line = io_env.error_line(err)
        assert f"{weights}: checksum mismatch" in line and "corrupt" in line
    assert not (tmp_path / "o").exists()


def test_a_caduceus_export_carries_checksums_and_a_damaged_copy_is_refused(env, tmp_path):
    exported = tmp_path / "cad"
    assert io_env.cli("convert", "--to", "caduceus", env["model"], "--out", exported)[0] == 0
    sums = (exported / "SHA256SUMS").read_text().split()
    assert sums[1::2] == ["config.json", "genomamba.json", "model.safetensors"]  # `sha256sum -c` reads it
    assert io_env.cli("convert", "--from", "caduceus", exported, "--out", tmp_path / "back")[0] == 0
    weights = exported / "model.safetensors"
    flip(weights, weights.stat().st_size - 64, 8)
    rc, err = io_env.cli("convert", "--from", "caduceus", exported, "--out", tmp_path / "back2")
    assert rc == 1
    assert f"{weights}: checksum mismatch" in io_env.error_line(err)
    assert not (tmp_path / "back2").exists()


def test_a_corrupt_index_of_a_scored_vcf_is_one_line_for_each_reader(env, tmp_path):
    scored = tmp_path / "scored.vcf.gz"
    shutil.copy(env["scored"], scored)
    shutil.copy(env["scored"] + ".tbi", str(scored) + ".tbi")
    flip(Path(str(scored) + ".tbi"), 30, 20)  # inside the deflated index
    argv, out = io_env.commands({**env, "scored": str(scored)}, tmp_path / "o")["evaluate"]
    score_argv, rescored = io_env.commands({**env, "vcf": str(scored)}, tmp_path / "o")["score"]
    for command in (argv, score_argv):
        proc = io_env.run_cli_process(command)  # a process: htslib writes its own messages to fd 2
        assert proc.returncode == 1
        line = io_env.error_line(proc.stderr)
        assert f"{scored}.tbi: the index of scored.vcf.gz is corrupt" in line
    assert not out.exists() and not rescored.exists()


def test_pretraining_on_a_corrupt_shard_stops_with_one_line_from_its_loader_worker(env, tmp_path):
    out = tokens(env, tmp_path, "bitshuffle")
    shard = out / "shard-00000.h5"
    with h5py.File(shard, "r") as f:
        chunks = f["contigs/0/tokens"].id.get_num_chunks()
    for i in range(chunks):  # every chunk: whichever window the sampler draws
        offset, size = chunk_offset(shard, "contigs/0/tokens", i)
        flip(shard, offset + 4, min(32, size - 8))
    argv, run = io_env.commands({**env, "tokens": str(out)}, tmp_path)["pretrain"]
    rc, err = io_env.cli(*argv, "data.num_workers=1")
    assert rc == 1
    line = io_env.error_line(err)
    assert f"{shard}, record 'c1': cannot read tokens" in line and "corrupt" in line
    assert not (run / "model").exists()
