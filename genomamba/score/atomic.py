"""Atomic file writes: write to a temporary file next to the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile


class AtomicFile:
    """A temporary path next to ``path``: ``commit()`` renames it into place, ``discard()``
    removes it."""

    def __init__(self, path):
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=directory)
        os.close(fd)

    def commit(self) -> None:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self.tmp, 0o666 & ~mask)
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.tmp)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the target's directory; renamed to ``path`` on success,
    removed on failure."""
    target = AtomicFile(path)
    try:
        yield target.tmp
        target.commit()
    except BaseException:
        target.discard()
        raise


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(text)


def write_json(path, value) -> None:
    write_text(path, json.dumps(value, indent=2, default=_plain) + "\n")


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
