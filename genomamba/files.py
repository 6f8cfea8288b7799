"""Atomic writes, for every file and directory genomamba writes.

A writer fills a temporary sibling of the target (``.NAME.XXXX.tmp``) and renames it into
place only when it is complete, so a reader (or Snakemake) sees the old output, the new
one or none, never half of one; a failure or an interrupt removes the temporary. The
temporary gets the permissions a plain ``open``/``mkdir`` would have given (``mkstemp``
and ``mkdtemp`` make private ones), so collaborators can read the results.

- ``atomic_path(path)``: a temporary file path, renamed to ``path`` on success;
- ``AtomicFile(path)``: the same with explicit ``commit()`` / ``discard()`` (streaming writers);
- ``atomic_dir(path)``: a temporary directory, renamed to ``path`` on success (an existing
  directory is moved aside first and removed after);
- ``write_text``, ``write_json``, ``save_figure``: the common cases.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_readable(path, directory: bool = False) -> None:
    """Give ``path`` the mode ``open`` (0666) or ``mkdir`` (0777) would have, less the umask."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def fsync_dir(path) -> None:
    """Flush a directory entry (a rename) to disk, where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
        make_readable(self.tmp)
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


@contextlib.contextmanager
def atomic_dir(path, fsync: bool = False):
    """Yield a temporary directory beside ``path`` to fill; on success it replaces ``path``
    (an existing one is renamed aside, then removed), on failure it is removed.
    ``fsync``: flush the parent directory after the rename (for files that must survive a
    power cut, such as model checkpoints)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        make_readable(tmp, directory=True)
        yield tmp
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
        if fsync:
            fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(path, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` directly (inside an ``atomic_dir``), optionally flushed."""
    with open(path, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(text)


def write_json(path, value) -> None:
    write_text(path, json.dumps(value, indent=2, default=_plain) + "\n")


def save_figure(fig, path, dpi: int = 100) -> None:
    """Save a matplotlib figure as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
