"""One exception type for problems a user can fix (bad input, bad config).

The CLI prints these as a single line, ``genomamba: error: <message>``, and
exits non-zero; anything else is a bug and keeps its traceback.
"""


class GenomambaError(Exception):
    """A user-facing error. The message names the file, record and line where known."""


def where(path, record=None, line=None) -> str:
    """Format a location as ``file[, record R][, line N]`` for error messages."""
    parts = [str(path)]
    if record is not None:
        parts.append(f"record {record!r}")
    if line is not None:
        parts.append(f"line {line}")
    return ", ".join(parts)


#: errno values that mean "the output does not fit", and how the CLI words them
STORAGE_FULL = {28: "no space left on device", 122: "disk quota exceeded",
                27: "file too large (a file-size limit such as `ulimit -f` was reached)"}
_STORAGE_WORDS = {"no space left on device": 28, "disk quota exceeded": 122, "file too large": 27}


def storage_full(exc: BaseException):
    """``(errno, filename or None)`` if ``exc`` (or an exception it was raised from or while
    handling) is a write that failed because the disk, a quota or a file-size limit is full;
    else ``None``. Libraries report this differently: ``OSError.errno`` (Python, PIL,
    torch), ``errno = 28`` inside the message (h5py/HDF5), or only the words, so all three
    are read; torch's RuntimeError keeps the OSError as its context."""
    import re

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        code = getattr(exc, "errno", None)
        if code not in STORAGE_FULL:
            found = re.search(r"errno = (\d+)", text)
            code = int(found.group(1)) if found else None
        if code not in STORAGE_FULL:
            code = next((c for words, c in _STORAGE_WORDS.items() if words in text.lower()), None)
        if code in STORAGE_FULL:
            filename = getattr(exc, "filename", None)
            if not filename:
                found = re.search(r"filename = '([^']*)'", text)
                filename = found.group(1) if found else None
            return code, filename
        exc = exc.__cause__ or exc.__context__
    return None
