"""The ``genomamba`` command line: one subcommand per pipeline step.

Each step lives in its own module, which exposes ``register(subparsers)``;
that function adds the subcommand's parser and sets ``func`` to the function
that runs it. Heavy imports (torch, h5py) happen inside those functions so
that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from genomamba import __version__
from genomamba.errors import GenomambaError

# Modules that provide subcommands, in the order they appear in --help.
COMMAND_MODULES = [
    "genomamba.data.commands",  # tokenize, info
    "genomamba.train.commands",  # pretrain
    "genomamba.score.commands",  # score
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except GenomambaError as exc:
        print(f"genomamba: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genomamba: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
