"""Progress of long loops, for every command: a tqdm bar when stderr is a terminal; plain
lines otherwise (a log file or a pipe gets no ``\\r`` redraws), at most one every
``every`` seconds and one at the end (none with ``leave=False``, for inner loops).

    with Progress(total=n, desc="score", unit="rec") as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk))

Closing the bar (the ``with`` block, also on an error) ends its line, so a message printed
after it starts on a line of its own.
"""

from __future__ import annotations

import sys
import time


def interactive(stream=None) -> bool:
    """Whether ``stream`` (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    def __init__(self, iterable=None, *, total=None, desc: str = "", unit: str = "it", initial: int = 0,
                 every: float = 30.0, enabled: bool = True, leave: bool = True):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n, self.every, self.postfix = initial, every, ""
        self.enabled, self.leave = enabled, leave
        self.interactive = enabled and interactive()
        self._bar = None
        if self.interactive:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr,
                             dynamic_ncols=True, mininterval=1.0, leave=leave)
        self._started = self._last = time.monotonic()
        self._start_n = initial
        self._closed = False

    # ---- the loop ----------------------------------------------------------------------
    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last >= self.every:
            self._line()

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix(values)

    def write(self, line: str) -> None:
        """A line of its own (above the bar on a terminal)."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    # ---- the end -------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.leave and self.n > self._start_n:
            self._line()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _line(self) -> None:
        self._last = now = time.monotonic()
        done = f"{self.n:,}" + (f"/{self.total:,}" if self.total else "")
        rate = (self.n - self._start_n) / max(now - self._started, 1e-9)
        extra = f"; {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {done} {self.unit} ({rate:,.1f} {self.unit}/s){extra}", file=sys.stderr, flush=True)
