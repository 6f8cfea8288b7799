"""Training subcommands: ``genomamba pretrain`` (and, later, ``finetune``).

``register(subparsers)`` adds every training subcommand; each has an ``add_*`` function
that builds its parser and a ``run_*`` function that runs it (heavy imports inside).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from genomamba.errors import GenomambaError

PRETRAIN_HELP = """\
Masked-language-model pretraining on windows of tokenized genomes. Settings come from
the packaged defaults (genomamba/configs/pretrain.yaml), then --config, then KEY=VALUE
overrides such as model.d_model=32 train.steps=50 data.window=1024. Run it under
`torchrun --nproc-per-node N` for data-parallel training on N GPUs (or CPU processes).
"""


def register(subparsers) -> None:
    add_pretrain(subparsers)
    from genomamba.train.finetune_cli import add_finetune  # finetune: genomamba/train/finetune*.py

    add_finetune(subparsers)


def add_pretrain(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain", help="pretrain a masked language model on tokenized genomes",
        description=PRETRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", action="append", metavar="DIR[:WEIGHT]",
                   help="tokenized genome directory, with an optional sampling weight; repeat "
                        "for several genomes (replaces data.sources)")
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run directory: config, metrics, checkpoints, final model")
    p.add_argument("--config", metavar="YAML", help="settings on top of the defaults")
    p.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT|latest|auto",
                   help="continue from a checkpoint file or the newest in RUN_DIR (default; "
                        "with the run's saved settings, then any new ones); 'auto': continue the "
                        "newest checkpoint if its settings match these, else start afresh")
    p.add_argument("--stop-at", type=int, metavar="STEP",
                   help="stop (with a checkpoint) after this step, keeping the schedule of "
                        "train.steps; continue later with --resume")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    p.set_defaults(func=run_pretrain)


def parse_source(text: str) -> dict:
    """``DIR`` or ``DIR:WEIGHT`` -> {path, weight}."""
    if not os.path.exists(text) and ":" in text:
        path, _, weight = text.rpartition(":")
        try:
            return {"path": path, "weight": float(weight)}
        except ValueError:
            pass
    return {"path": text, "weight": 1.0}


def pretrain_config(args) -> dict:
    from genomamba.train.config import load_config, read_yaml

    overrides = list(args.overrides)
    if args.resume is not None and "=" in args.resume:  # `--resume key=value ...`
        overrides.insert(0, args.resume)
        args.resume = "latest"
    base = None
    saved = Path(args.out) / "config.yaml"
    if args.resume not in (None, "auto") and saved.exists():
        base = read_yaml(saved)  # resume with the run's own settings, then new overrides
    cfg = load_config(args.config, overrides, base=base)
    if args.data:
        cfg["data"]["sources"] = [parse_source(d) for d in args.data]
    if not cfg["data"]["sources"]:
        raise GenomambaError("no training data: pass --data DIR or set data.sources")
    return cfg


def run_pretrain(args) -> int:
    from genomamba.train.distributed import setup, teardown
    from genomamba.train.pretrain import run_pretraining

    cfg = pretrain_config(args)
    env = setup()
    try:
        result = run_pretraining(cfg, args.out, resume=args.resume, stop_at=args.stop_at, env=env)
    finally:
        teardown()
    if env.is_main:
        where = Path(args.out) / ("model" if result.finished else "checkpoints")
        print(f"pretrain: step {result.step}/{cfg['train']['steps']}; wrote {where}")
    return 0
