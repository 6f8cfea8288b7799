"""Safe writes, for every file and directory genomamba writes.

A writer fills a temporary sibling of the target (``.NAME.XXXX.tmp``) and renames it into
place only when it is complete, so a reader (or Snakemake) sees the old output, the new
one or none, never half of one; a failure or an interrupt removes the temporary. The
temporary gets the permissions a plain ``open``/``mkdir`` would have given (``mkstemp``
and ``mkdtemp`` make private ones), so collaborators can read the results.

- ``atomic_path(path)``: a temporary file path, renamed to ``path`` on success;
- ``AtomicFile(path)``: the same with explicit ``commit()`` / ``discard()`` (streaming writers);
- ``atomic_dir(path)``: a temporary directory, renamed to ``path`` on success (an existing
  directory is swapped out in one step, ``exchange``, and removed after);
- ``write_text``, ``write_json``, ``save_figure``: the common cases;
- ``staged_outputs()``: several outputs that appear together (the last one marks them finished);
- ``output_lock(path)``: one writer per output (a second process stops with one line), and
  ``remove_stale_temporaries``: what killed runs of that output left;
- ``raise_if_full``: the errno of a full disk, for libraries that lose it;
- ``SHA256SUMS`` files (``sha256sum -c`` format): ``sha256sums_text``, ``check_sha256sums``.
"""

from __future__ import annotations

import contextlib
import glob
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


def exchange(a, b) -> bool:
    """Swap the paths ``a`` and ``b`` in one atomic step (Linux ``renameat2`` with
    ``RENAME_EXCHANGE``), so that a reader or a kill never sees ``b`` missing while one
    directory replaces another. False where the OS, the C library or the filesystem cannot
    (then nothing was changed)."""
    import ctypes
    import errno
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library older than glibc 2.28
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):  # not on this filesystem
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


@contextlib.contextmanager
def atomic_dir(path, fsync: bool = False):
    """Yield a temporary directory beside ``path`` to fill; on success it replaces ``path``
    (an existing one is swapped out in one step where the OS can, ``exchange``, then
    removed), on failure it is removed.
    ``fsync``: flush the parent directory after the rename (for files that must survive a
    power cut, such as model checkpoints)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        make_readable(tmp, directory=True)
        yield tmp
        if path.exists():
            if exchange(tmp, path):  # one step: the new one in place, the old one at tmp's name
                shutil.rmtree(tmp, ignore_errors=True)
            else:  # a moment without ``path`` between the two renames
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


def lock_path(path) -> Path:
    """The lock file of an output: ``.NAME.lock`` beside it."""
    path = Path(os.path.abspath(path))
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def output_lock(path, clean: bool = False):
    """Hold an exclusive lock on the output ``path`` while a command writes it, so that a
    second genomamba process writing the same output (a job started twice) stops at once
    instead of interleaving with the first.

    The lock is ``fcntl.flock`` on ``.NAME.lock`` beside ``path``; the kernel releases it when
    the process ends, however it ends, so a killed run leaves no stale lock (at most an empty,
    unlocked lock file, which the next run takes over). The holder writes its pid into the
    file for the loser's message, and removes the file when done; a process that opened the
    file just before that removal re-checks, after acquiring, that the file it locked is still
    the one at that name. Directories created for the lock are removed again if left empty.
    ``clean``: once the lock is held, remove what killed runs of this output left behind
    (``remove_stale_temporaries``); only for a single process (torchrun's other ranks write
    beside the output while rank 0 holds the lock).
    Raises ``GenomambaError`` naming the output and the holder's pid."""
    import errno

    from genomamba.errors import GenomambaError

    lock = lock_path(path)
    created = []
    try:
        for parent in reversed([lock.parent, *lock.parent.parents]):
            if not parent.exists():
                with contextlib.suppress(FileExistsError):
                    os.mkdir(parent)
                    created.append(parent)
        fd = _locked(lock, path)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise GenomambaError(f"{path}: cannot write in {exc.filename or lock.parent} ({exc.strerror})") from None
        raise
    try:
        if fd is not None:
            with contextlib.suppress(OSError):  # a full disk: the pid is only for messages
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            if clean:
                remove_stale_temporaries(path)
        yield lock if fd is not None else None
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(lock)  # while still holding it: see the inode check in _locked
            os.close(fd)
        for parent in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(parent)


def remove_stale_temporaries(path) -> list[str]:
    """Remove the temporaries of ``path`` that a killed run left: ``.NAME.*.tmp`` beside it and,
    when ``path`` is a directory, the ``.*.tmp`` entries directly inside it (files or
    directories). Call it only while holding ``output_lock(path)``: every writer of these names
    holds that lock. Returns the removed paths."""
    path = Path(os.path.abspath(path))
    found = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    if path.is_dir() and not path.is_symlink():
        found += path.glob(".*.tmp")
    removed = []
    for stale in found:
        try:
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
            removed.append(str(stale))
        except OSError:  # gone already, or not ours to remove: leave it
            pass
    return removed


def _locked(lock: Path, path):
    """A descriptor of ``lock``, flock-ed; ``None`` where the filesystem has no flock (Lustre
    mounted without ``-o flock``): then the atomic renames alone keep each output whole."""
    import fcntl

    from genomamba.errors import GenomambaError

    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise GenomambaError(
                f"{path} is being written by another genomamba process (pid {holder}); wait for it to "
                f"finish (or stop it) and rerun (lock: {lock})") from None
        except OSError:  # ENOLCK, ENOSYS, EOPNOTSUPP: no locking here
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(lock)
            return None
        try:  # the previous holder may have removed the file after we opened it
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _lock_holder(fd) -> str:
    """The pid written in a lock file (the holder may not have written it yet: wait a little)."""
    import time

    for _ in range(20):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
        time.sleep(0.01)
    return "unknown"


class StagedOutputs:
    """Several outputs that appear together: ``file(target)`` and ``directory(target)`` give
    temporary paths beside each target to write (with any writer); ``commit()`` renames them
    all into place, in the order they were asked for (so put the file that marks the output
    finished last), and only once every one is written. A failure (a full disk) before that
    leaves every earlier output as it was. Use ``with staged_outputs() as stage:``."""

    def __init__(self):
        self._staged: list[tuple[str, str, bool]] = []  # (temporary, target, is a directory)

    def file(self, target) -> str:
        staged = AtomicFile(target)
        self._staged.append((staged.tmp, staged.path, False))
        return staged.tmp

    def directory(self, target) -> str:
        """A path that does not exist yet, for a writer that creates the directory itself."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
        self._staged.append((str(tmp), str(target), True))
        return str(tmp)

    def commit(self) -> None:
        for tmp, target, is_dir in self._staged:
            if is_dir:
                if os.path.exists(target) and exchange(tmp, target):  # one step, as atomic_dir
                    shutil.rmtree(tmp, ignore_errors=True)
                    continue
                old = None
                if os.path.exists(target):
                    old = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.old-{uuid.uuid4().hex[:8]}")
                    os.rename(target, old)
                os.rename(tmp, target)
                if old:
                    shutil.rmtree(old, ignore_errors=True)
            else:
                make_readable(tmp)
                os.replace(tmp, target)
        self._staged = []

    def discard(self) -> None:
        for tmp, _, is_dir in self._staged:
            if is_dir:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp)
        self._staged = []


@contextlib.contextmanager
def staged_outputs():
    """``StagedOutputs`` committed on success, discarded on failure."""
    stage = StagedOutputs()
    try:
        yield stage
        stage.commit()
    except BaseException:
        stage.discard()
        raise


def raise_if_full(path, nbytes: int = 1 << 16) -> None:
    """Raise the ``OSError`` (ENOSPC, EDQUOT, EFBIG) of a probe write of ``nbytes`` beside
    ``path``, if the filesystem cannot take it. For libraries that report a failed write
    without its errno (pyBigWig, pysam's tabix): call it before removing the failed
    temporary, so that the space it holds still counts."""
    import errno

    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, probe = tempfile.mkstemp(prefix=".genomamba-probe-", dir=directory)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"\0" * nbytes)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            exc.filename = exc.filename or os.fspath(path)
            raise
    finally:
        with contextlib.suppress(OSError):
            os.remove(probe)


SHA256SUMS = "SHA256SUMS"


def sha256sums_text(files: dict) -> bytes:
    """A ``SHA256SUMS`` file (``sha256sum -c`` reads it) for ``{name: bytes}``."""
    import hashlib

    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())).encode()


def check_sha256sums(directory) -> None:
    """Check the files listed in ``directory/SHA256SUMS``, if there is one (older outputs and
    other tools' directories have none, and are read unchecked). A file whose bytes changed
    raises ``GenomambaError`` naming it."""
    import hashlib

    from genomamba.errors import GenomambaError

    sums = Path(directory) / SHA256SUMS
    if not sums.is_file():
        return
    for number, line in enumerate(sums.read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        path = Path(directory) / name.strip()
        if len(digest) != 64 or not name.strip():
            raise GenomambaError(f"{sums}, line {number}: not a `sha256sum` line")
        sha = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(block)
        except FileNotFoundError:
            raise GenomambaError(f"{path}: missing (listed in {sums})") from None
        if sha.hexdigest() != digest.lower():
            raise GenomambaError(f"{path}: checksum mismatch (sha256 {sha.hexdigest()[:12]}..., {SHA256SUMS} "
                                 f"records {digest[:12]}...): the file is corrupt or truncated")
