"""The ``genomamba`` command line: one subcommand per pipeline step.

Each step lives in its own module, which exposes ``register(subparsers)``;
that function adds the subcommand's parser and sets ``func`` to the function
that runs it. Heavy imports (torch, h5py) happen inside those functions so
that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys

from genomamba import __version__
from genomamba.errors import GenomambaError
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
    try:
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
    return int(rc or 0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):  # stdout without a file descriptor (tests)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
