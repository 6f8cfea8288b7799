"""The ``genomamba finetune`` subcommand (registered by ``genomamba.train.commands``)."""

from __future__ import annotations

import argparse

FINETUNE_HELP = """\
Fine-tune a pretrained checkpoint for sequence classification (binary or multi-class).
TRAIN/VAL/TEST are each a BED (chrom, start, end, label; needs --genome), a TSV
(sequence, label) or a folder of FASTA files, one per class (Genomic Benchmarks layout).
Writes OUT/model (the fine-tuned classifier), OUT/metrics.json (accuracy, MCC, macro-F1,
AUROC per split), OUT/predictions.tsv and OUT/scores.png.
"""


def add_finetune(subparsers) -> None:
    from genomamba.train.finetune import DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_PATIENCE, METRICS, MODES

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
    p.add_argument("--mode", choices=MODES, default="full",
                   help="probe: linear probe on frozen features; full: train every weight (default)")
    p.add_argument("--pooling", choices=("mean", "max", "center"), default="mean")
    p.add_argument("--epochs", type=int,
                   help=f"maximum epochs (default {DEFAULT_EPOCHS['probe']} probe, {DEFAULT_EPOCHS['full']} full)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, help=f"learning rate (default {DEFAULT_LR['probe']} probe, {DEFAULT_LR['full']} full)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--patience", type=int,
                   help="epochs without validation improvement before stopping "
                        f"(default {DEFAULT_PATIENCE['probe']} probe, {DEFAULT_PATIENCE['full']} full)")
    p.add_argument("--metric", choices=METRICS, default="mcc", help="validation metric for early stopping")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (GPU if there is one), cpu, cuda, cuda:1, ...")
    p.set_defaults(func=run_finetune_command)


def run_finetune_command(args) -> int:
    import json

    from genomamba.train.finetune import FinetuneSettings, run_finetune

    settings = FinetuneSettings(
        model=args.model, train=args.train, val=args.val, test=args.test, out=args.out, genome=args.genome,
        mode=args.mode, pooling=args.pooling, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, patience=args.patience, metric=args.metric, seed=args.seed,
        device=args.device,
    )
    metrics = run_finetune(settings)
    summary = {split: {k: metrics[split][k] for k in ("accuracy", "mcc", "macro_f1", "auroc")}
               for split in ("val", "test") if split in metrics}
    print(f"finetune: best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; {json.dumps(summary)}")
    print(f"finetune: wrote {args.out}/model, metrics.json, predictions.tsv, scores.png")
    return 0
