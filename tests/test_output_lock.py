"""Two runs, one output: a second genomamba process writing an output that another is writing
stops at once with one line naming the output and the other's pid, exit 1, and leaves the
first run's output complete and correct. The lock (``genomamba.files.output_lock``: flock on
``.NAME.lock`` beside the output) is released by the kernel when a process dies, so a killed
run leaves nothing that blocks the next one."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pysam
import pytest

import io_env
from genomamba.errors import GenomambaError
from genomamba.files import lock_path, output_lock


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return io_env.shared(tmp_path_factory)


def every_writer(env, out: Path) -> dict:
    """Every command that writes an output -> its argv."""
    argv = {name: a for name, (a, _) in io_env.commands(env, out).items()}
    argv["predict"] = ["predict", "--head", env["head"], "--tsv", env["dir"] / "val.tsv", "--out", out / "p.tsv",
                       "--device", "cpu"]
    argv["convert"] = ["convert", "--to", "caduceus", env["model"], "--out", out / "cad"]
    return argv


def out_of(argv) -> Path:
    return Path(argv[list(map(str, argv)).index("--out") + 1])


def records(path) -> list[str]:
    with pysam.VariantFile(str(path)) as vf:
        return [str(r) for r in vf]


def wait_for_holder(lock: Path, proc, timeout=60.0) -> int:
    """The pid written in the lock file once ``proc`` holds it."""
    end = time.time() + timeout
    while time.time() < end:
        assert proc.poll() is None, proc.communicate()
        try:
            text = lock.read_text().strip()
        except FileNotFoundError:
            text = ""
        if text == str(proc.pid):
            return proc.pid
        time.sleep(0.02)
    raise AssertionError(f"{lock} not taken by pid {proc.pid}")


def test_a_second_run_on_the_same_output_stops_and_the_first_finishes(env, tmp_path):
    argv, out = io_env.commands(env, tmp_path)["score"]
    cmd = [sys.executable, "-m", "genomamba", *map(str, argv)]
    child_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env)
    try:
        pid = wait_for_holder(lock_path(out), first)
        began = time.time()
        second = subprocess.run(cmd, capture_output=True, text=True, env=child_env, timeout=60)
        waited = time.time() - began
        assert first.poll() is None, "the first run ended before the second was refused: no overlap tested"
    finally:
        _, err = first.communicate(timeout=120)
    assert second.returncode == 1, second.stderr
    line = io_env.error_line(second.stderr)
    assert line.startswith(f"genomamba: error: {out} is being written by another genomamba process (pid {pid})")
    assert waited < 20  # at once: it did not wait for the first, nor load a model
    assert first.returncode == 0, err
    # the first run's output is complete and the same as an undisturbed run's
    assert records(out) == records(env["scored"])
    assert (tmp_path / "scored.summary.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.scores.png", "scored.summary.json",
                                                           "scored.vcf.gz", "scored.vcf.gz.tbi"]


@pytest.mark.parametrize("command", ["tokenize", "pretrain", "finetune", "score", "track", "embed", "predict",
                                     "evaluate", "convert"])
def test_every_writer_takes_the_lock(env, tmp_path, command):
    argv = every_writer(env, tmp_path / "o")[command]
    out = out_of(argv)
    with output_lock(out):
        rc, err = io_env.cli(*argv)
        assert rc == 1
        assert io_env.error_line(err).startswith(
            f"genomamba: error: {out} is being written by another genomamba process (pid {os.getpid()})")
        assert not out.exists()
    assert not (tmp_path / "o").exists()  # the holder removed its lock file and the folder it made for it


def test_a_killed_run_leaves_no_lock_that_blocks(env, tmp_path):
    argv, out = io_env.commands(env, tmp_path)["score"]
    proc = subprocess.Popen([sys.executable, "-m", "genomamba", *map(str, argv)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for_holder(lock_path(out), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert lock_path(out).exists()  # left behind by the kill, but not locked
    rc, err = io_env.cli(*argv)
    assert rc == 0, err
    assert records(out) == records(env["scored"]) and not lock_path(out).exists()


def _count_under_lock(path: str, n: int, q) -> None:
    done = 0
    while done < n:
        try:
            with output_lock(path):
                counter = Path(path + ".count")
                value = int(counter.read_text()) if counter.exists() else 0
                counter.write_text(str(value + 1))
                done += 1
        except GenomambaError:
            time.sleep(0.0005)
    q.put(done)


def test_the_lock_excludes_even_as_lock_files_are_removed_and_recreated(tmp_path):
    """Three processes take and release the lock 300 times each; the holder removes the lock
    file on release, so a waiter often locks a file that is no longer at that name and must
    notice. An unguarded read-increment-write loses updates as soon as two overlap."""
    out = str(tmp_path / "out")
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_count_under_lock, args=(out, 300, q)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [q.get(timeout=5) for _ in procs] == [300] * 3
    assert int(Path(out + ".count").read_text()) == 900
    assert not lock_path(out).exists()


def test_an_output_on_a_read_only_filesystem_is_one_line(env, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True)
    if done.returncode:
        pytest.skip("cannot mount a read-only tmpfs here (not root)")
    try:
        argv, out = io_env.commands(env, ro)["embed"]
        rc, err = io_env.cli(*argv)
        assert rc == 1
        line = io_env.error_line(err)
        assert str(out) in line and "Read-only file system" in line
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=True)


def test_the_parts_of_a_scattered_score_run_side_by_side(env, tmp_path):
    """`score --part K/N` jobs share one --out but write only their own part: each locks its
    part, so the N parts run at once, and only the same part twice is refused."""
    from genomamba.score.scatter import part_path

    argv, out = io_env.commands(env, tmp_path)["score"]
    with output_lock(part_path(str(out), 1, 2)):
        rc, err = io_env.cli(*argv, "--part", "2/2")
        assert rc == 0, err
        rc, err = io_env.cli(*argv, "--part", "1/2")
        assert rc == 1 and "is being written by another genomamba process" in io_env.error_line(err)
    assert os.path.isfile(part_path(str(out), 2, 2)) and not os.path.exists(part_path(str(out), 1, 2))


def test_a_rerun_removes_what_killed_runs_of_its_output_left(tmp_path):
    """Temporaries of this output (beside it, and directly inside it when it is a directory)
    go once the lock is held; another output's temporaries beside it are not touched."""
    from genomamba.files import output_lock

    out = tmp_path / "run"
    out.mkdir()
    stale = [tmp_path / ".run.ab12.tmp", out / ".metrics.json.x1.tmp", out / ".model.x2.tmp"]
    stale[0].mkdir()
    (stale[0] / "shard-00000.h5").write_bytes(b"partial")
    stale[1].write_text("{")
    stale[2].mkdir()
    others = [tmp_path / ".run2.ab12.tmp", tmp_path / ".other.vcf.gz.x3.tmp", out / "metrics.json"]
    for p in others:
        p.write_text("keep")
    with output_lock(out, clean=False):
        assert all(p.exists() for p in stale)
    with output_lock(out, clean=True):
        assert not any(p.exists() for p in stale)
    assert all(p.read_text() == "keep" for p in others)
