"""``atomic_dir`` replacing an earlier output directory (``tokenize`` over an earlier run,
a model exported again): SIGKILLed between any two statements of ``genomamba.files``, the
output holds either the earlier complete directory or the new one, never nothing.

The kill moments are found by tracing: the child process counts the lines that
``genomamba/files.py`` executes after the new directory is filled, and kills itself at the
N-th, for N = 1, 2, ... until a run gets to the end. (A kill between the two renames of a
rename-aside replacement left the output missing: issue 24, fixed with an atomic exchange.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = r"""
import os, signal, sys
from pathlib import Path
from genomamba import files

target, n = Path(sys.argv[1]), int(sys.argv[2])
count, armed = 0, False

def trace(frame, event, arg):
    if frame.f_code.co_filename != files.__file__:
        return None
    def line(frame, event, arg):
        global count
        if armed and event == "line":
            count += 1
            if count == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return line
    return line

sys.settrace(trace)
with files.atomic_dir(target) as tmp:
    (tmp / "a.txt").write_text("new a\n")
    (tmp / "b.txt").write_text("new b\n")
    armed = True
sys.settrace(None)
print("done")
"""

OLD = {"old.txt": "old\n"}
NEW = {"a.txt": "new a\n", "b.txt": "new b\n"}


def contents(folder: Path) -> dict:
    return {p.name: p.read_text() for p in folder.iterdir()}


def test_a_replaced_directory_is_old_or_new_after_a_kill_at_any_statement(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    target = tmp_path / "out" / "tokens"
    kills, seen = 0, []
    for n in range(1, 200):
        target.mkdir(parents=True, exist_ok=True)
        for p in target.iterdir():
            p.unlink()
        (target / "old.txt").write_text(OLD["old.txt"])
        run = subprocess.run([sys.executable, str(script), str(target), str(n)], capture_output=True, text=True,
                             timeout=60)
        if run.returncode == 0:
            assert run.stdout.strip() == "done"
            assert contents(target) == NEW
            break
        assert run.returncode == -9, run.stderr
        kills += 1
        assert target.is_dir(), f"killed at line {n} of genomamba/files.py: {target} is missing"
        state = contents(target)
        assert state in (OLD, NEW), f"killed at line {n}: {state}"
        seen.append("new" if state == NEW else "old")
        # whatever else is left beside it is hidden, and never named like the output
        assert all(p.name.startswith(".") for p in target.parent.iterdir() if p != target)
    else:
        raise AssertionError("atomic_dir never finished")
    assert kills >= 2 and "new" in seen, (kills, seen)


def test_exchange_swaps_and_the_fallback_still_replaces(tmp_path, monkeypatch):
    from genomamba import files

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "y").write_text("b")
    assert files.exchange(a, b)  # Linux with glibc >= 2.28 on a local filesystem
    assert contents(a) == {"y": "b"} and contents(b) == {"x": "a"}

    monkeypatch.setattr(files, "exchange", lambda *args: False)  # where the OS cannot swap
    with files.atomic_dir(b) as tmp:
        (tmp / "z").write_text("z")
    assert contents(b) == {"z": "z"} and sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
