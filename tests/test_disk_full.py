"""A full disk: every command that writes, writing into a filesystem with no room left, stops
with one line naming its output (``no space left on device``), exit 1, no traceback, nothing
half-written, and the earlier outputs beside it (or at the same path) untouched.

The small filesystem is a tmpfs the test mounts (as root, which CI is) and fills, leaving 4
KiB; where mounting is not allowed, each file is limited to 4 KiB with ``RLIMIT_FSIZE`` in
the child process (``ulimit -f``, how an ordinary user meets a quota), and the message says
``file too large`` (``GENOMAMBA_TEST_NO_MOUNT=1`` runs that fallback where mounting works). Each case first writes a complete output with room to spare, then fills
the filesystem and runs the same command again over it (a rerun), in a fresh process.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

import io_env

FREE = 4096  # bytes left: one page


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return io_env.shared(tmp_path_factory)


class SmallDisk:
    """A directory on a filesystem that can be made full: a tmpfs mounted here, or (where
    mounting fails) a plain directory whose child processes get ``RLIMIT_FSIZE``."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir()
        if os.environ.get("GENOMAMBA_TEST_NO_MOUNT"):  # try the fallback where mounting works too
            self.tmpfs = False
        else:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(path)],
                                  capture_output=True, text=True)
            self.tmpfs = done.returncode == 0
        self.reason = "no space left on device" if self.tmpfs else "file too large"

    def fill(self) -> None:
        """Leave FREE bytes (tmpfs); with RLIMIT_FSIZE the child's limit does it."""
        if not self.tmpfs:
            return
        filler = self.path / f"filler-{uuid.uuid4().hex[:6]}"
        st = os.statvfs(self.path)
        with open(filler, "wb") as fh:
            fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - FREE))
        assert os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize == FREE

    def preexec(self):
        if self.tmpfs:
            return None

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (FREE, FREE))
        return limit

    def close(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.path)], check=True)


@pytest.fixture
def disk(tmp_path):
    d = SmallDisk(tmp_path / "small")
    yield d
    d.close()


def snapshot(root: Path) -> dict:
    """Every file under root (fillers aside) -> its SHA-256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("filler-")}


def assert_one_line_about(proc, out: Path, reason: str) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and errors[0].startswith("genomamba: error: "), proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == errors[0]
    assert str(out) in errors[0] and reason in errors[0], errors[0]
    return errors[0]


# For each command, files a failed rerun may leave beside the earlier output: its resume state,
# which is not an output (track's parts; pretraining's metrics log and config of the new run).
RESUME_STATE = {"track": ("t.bw.parts/",)}


@pytest.mark.parametrize("command", ["tokenize", "finetune", "score", "track", "embed", "evaluate"])
def test_rerun_on_a_full_disk_is_one_line_and_keeps_the_earlier_output(env, disk, command):
    argv, out = io_env.commands(env, disk.path)[command]
    rc, err = io_env.cli(*argv)  # the earlier, complete output, with room to spare
    assert rc == 0, err
    before = snapshot(disk.path)
    assert any(name.startswith(out.name) for name in before)
    disk.fill()
    proc = io_env.run_cli_process(argv, preexec_fn=disk.preexec())
    assert_one_line_about(proc, out, disk.reason)
    after = snapshot(disk.path)
    extra = {k for k in set(after) - set(before) if not k.startswith(RESUME_STATE.get(command, ("\0",)))}
    assert not extra, f"left behind: {sorted(extra)}"
    assert {k: after.get(k) for k in before} == before  # the earlier output, byte for byte
    assert not [p for p in disk.path.rglob("*") if p.name.endswith((".tmp", ".lock"))]


def test_pretrain_resume_on_a_full_disk_keeps_the_last_checkpoint(env, disk):
    argv, run = io_env.commands(env, disk.path)["pretrain"]
    rc, err = io_env.cli(*argv, "--stop-at", "1")
    assert rc == 0, err
    checkpoint = run / "checkpoints" / "step-00000001.pt"
    kept = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    disk.fill()
    proc = io_env.run_cli_process([*argv, "--resume"], preexec_fn=disk.preexec())
    assert_one_line_about(proc, run, disk.reason)
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == kept
    assert not (run / "model").exists() and not (run / "summary.json").exists()  # not finished
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000001.pt"]
    assert not [p for p in disk.path.rglob("*") if p.name.endswith((".tmp", ".lock"))]
    # with room again, --resume finishes the run from that checkpoint
    for filler in disk.path.glob("filler-*"):
        filler.unlink()
    rc, err = io_env.cli(*argv, "--resume")
    assert rc == 0, err
    assert (run / "model" / "model.safetensors").is_file()


def test_a_first_run_on_a_full_disk_writes_nothing(env, disk):
    """No earlier output: the failed run leaves no file at all (tokenize and embed: HDF5
    writers, whose failed close used to crash the process)."""
    disk.fill()
    for command in ("tokenize", "embed"):
        argv, out = io_env.commands(env, disk.path)[command]
        proc = io_env.run_cli_process(argv, preexec_fn=disk.preexec())
        assert_one_line_about(proc, out, disk.reason)
        assert snapshot(disk.path) == {}
