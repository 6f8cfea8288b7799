"""The ``genomamba`` command line: one subcommand per pipeline step.

Each step lives in its own module, which exposes ``register(subparsers)``;
that function adds the subcommand's parser and sets ``func`` to the function
that runs it. Heavy imports (torch, h5py) happen inside those functions so
that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shlex
import signal
import sys

from genomamba import __version__
from genomamba.errors import STORAGE_FULL, GenomambaError, storage_full
from genomamba.files import output_lock
from genomamba.settings import HelpFormatter

# Modules that provide subcommands, in the order they appear in --help.
COMMAND_MODULES = [
    "genomamba.data.commands",  # tokenize, info
    "genomamba.train.commands",  # pretrain
    "genomamba.score.commands",  # score
    "genomamba.track.commands",  # track
    "genomamba.infer.commands",  # embed, predict
    "genomamba.evaluate.commands",  # evaluate
    "genomamba.convert.commands",  # convert
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genomamba",
        description="DNA sequence modelling with an RC-equivariant bidirectional Mamba.",
    )
    parser.add_argument("--version", action="version", version=f"genomamba {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in sub.choices.values():  # every command's --help shows its defaults
        command.formatter_class = HelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = "genomamba " + shlex.join(argv)  # recorded in outputs' provenance
    _ignore_file_size_signal()
    try:
        with _output_lock(args):
            rc = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:  # `genomamba info DIR | head`: the reader has all it wanted
        _silence_stdout()
        return 128 + 13  # as a process ended by SIGPIPE
    except GenomambaError as exc:
        print(f"genomamba: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genomamba: interrupted", file=sys.stderr)
        return 130
    except (OSError, RuntimeError) as exc:
        full = storage_full(exc)
        if full is None:
            raise
        print(f"genomamba: error: {_full_message(args, *full)}", file=sys.stderr)
        return 1
    return int(rc or 0)


def _output_lock(args):
    """The lock on the command's ``--out`` (genomamba.files.output_lock): a second process
    writing the same output stops with one line. Under torchrun only rank 0 takes it; ``score
    --part K/N`` writes only its part (the N parts of one output run side by side), so it
    locks that."""
    out = getattr(args, "out", None)
    if not out or os.environ.get("RANK", "0") != "0":
        return contextlib.nullcontext()
    if getattr(args, "part", None):
        from genomamba.score.scatter import parse_part, part_path

        out = part_path(out, *parse_part(args.part))
    # a single process also removes what killed runs of this output left behind
    return output_lock(out, clean=os.environ.get("WORLD_SIZE", "1") == "1")


def _full_message(args, code: int, filename) -> str:
    """``OUT: no space left on device (writing FILE)``: the output the user named, and the
    file (often a temporary beside it) whose write failed."""
    out = getattr(args, "out", None)
    target = str(out or filename or "output")
    where = f" (writing {filename})" if filename and out and os.path.abspath(filename) != os.path.abspath(out) else ""
    return f"{target}: {STORAGE_FULL[code]}{where}; make room and rerun"


def _ignore_file_size_signal() -> None:
    """A write past ``ulimit -f`` then fails with EFBIG (reported in one line) instead of the
    process being killed by SIGXFSZ."""
    with contextlib.suppress(AttributeError, ValueError):  # not on this OS; not the main thread
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):  # stdout without a file descriptor (tests)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
