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
