"""The ``genomamba finetune`` subcommand (registered by ``genomamba.train.commands``)."""

from __future__ import annotations

import argparse

from genomamba import settings

FINETUNE_HELP = """\
Fine-tune a pretrained checkpoint for sequence classification (binary or multi-class).
TRAIN/VAL/TEST are each a BED (chrom, start, end, label; needs --genome), a TSV
(sequence, label) or a folder of FASTA files, one per class (Genomic Benchmarks layout).
Settings: the defaults in genomamba/configs/finetune.yaml, then --config, then KEY=VALUE
overrides, then the flags below. Writes OUT/model (the fine-tuned classifier),
OUT/metrics.json (accuracy, MCC, macro-F1, AUROC per split), OUT/predictions.tsv and
OUT/scores.png.
"""


def add_finetune(subparsers) -> None:
    from genomamba.train.finetune_defaults import DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_PATIENCE, METRICS, MODES, POOLINGS

    def per_mode(table):
        return f"{table['probe']} probe, {table['full']} full"

    p = subparsers.add_parser(
        "finetune", help="fine-tune a pretrained model for sequence classification",
        description=FINETUNE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="PRETRAINED_DIR", help="checkpoint directory (save_pretrained)")
    p.add_argument("--train", required=True, help="training set: BED, TSV or FASTA folder")
    p.add_argument("--val", required=True, help="validation set (early stopping)")
    p.add_argument("--test", help="test set (reported, never used for choices)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--genome", metavar="FASTA|SHARDS", help="genome for BED sets: FASTA or token-shard directory")
    p.add_argument("--mode", choices=MODES,
                   help="probe: linear probe on frozen features; full: train every weight")
    p.add_argument("--pooling", choices=POOLINGS, help="how the positions' features become one vector")
    p.add_argument("--epochs", type=int, help=f"maximum epochs (default {per_mode(DEFAULT_EPOCHS)})")
    p.add_argument("--batch-size", type=int, help="sequences per batch")
    p.add_argument("--lr", type=float, help=f"learning rate (default {per_mode(DEFAULT_LR)})")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay")
    p.add_argument("--patience", type=int,
                   help=f"epochs without validation improvement before stopping (default {per_mode(DEFAULT_PATIENCE)})")
    p.add_argument("--metric", choices=METRICS, help="validation metric that picks the best epoch")
    p.add_argument("--seed", type=int, help="seed of everything random")
    p.add_argument("--device", help="auto (GPU if there is one; the default), cpu, cuda, cuda:1, ...")
    p.add_argument("--baselines", help="comma-separated baselines fitted on the same splits: kmer, onehot")
    settings.add_arguments(p, "finetune", "mode=probe lr=0.001")
    p.set_defaults(func=run_finetune_command)


def run_finetune_command(args) -> int:
    import json

    from genomamba.train.finetune import FinetuneSettings, run_finetune

    chosen = settings.from_args(args, "finetune")
    metrics = run_finetune(FinetuneSettings(model=args.model, train=args.train, val=args.val, test=args.test,
                                            out=args.out, genome=args.genome, **chosen))
    summary = {split: {k: metrics[split][k] for k in ("accuracy", "mcc", "macro_f1", "auroc")}
               for split in ("val", "test") if split in metrics}
    print(f"finetune: best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; {json.dumps(summary)}")
    print(f"finetune: wrote {args.out}/model, metrics.json, predictions.tsv, scores.png")
    return 0
