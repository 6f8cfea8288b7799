"""The ``genomamba embed`` and ``genomamba predict`` subcommands."""

from __future__ import annotations

import argparse

from genomamba import settings

EMBED_HELP = """\
Export a pretrained model's features of regions or sequences to HDF5: datasets names,
lengths, [labels,] embeddings (n, d) pooled or (n, L, d) with --pooling none, float32 or
float16, and the settings as attributes. Both strands are run and averaged (for a "ps"
model a region and its reverse complement get the same pooled features). Input: BED
regions of a genome (--bed --genome), FASTA records (--fasta) or a TSV of sequences
(--tsv). Settings: the defaults in genomamba/configs/embed.yaml, then --config, then
KEY=VALUE overrides, then the flags below.
"""

PREDICT_HELP = """\
Apply a fine-tuned classifier (genomamba finetune --out DIR) to new regions or sequences,
as finetune applies it to its test set (its pooling, both strands averaged). Writes a TSV:
name [label] predicted p_<class>... Sequences far from the classifier's training length
are an error (length_ratio). Settings: the defaults in genomamba/configs/predict.yaml,
then --config, then KEY=VALUE overrides, then the flags below.
"""


def _inputs(p) -> None:
    p.add_argument("--bed", metavar="BED", help="regions: chrom, start, end [, label, score, strand] (needs --genome)")
    p.add_argument("--genome", metavar="FASTA|SHARDS", help="genome for --bed: FASTA or token-shard directory")
    p.add_argument("--fasta", metavar="FASTA", help="sequences: one per FASTA record (plain, gzip or bgzip)")
    p.add_argument("--tsv", metavar="TSV", help="sequences: sequence[<TAB>label], or a header naming sequence, name, label")
    p.add_argument("--batch-size", type=int, help="sequences per forward pass (fewer for long ones)")
    p.add_argument("--device", help="auto (GPU if there is one; the default), cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"),
                   help="auto (the default): bf16 autocast on GPU, fp32 on CPU")


def register(subparsers) -> None:
    from genomamba.infer.embed import DTYPES, POOLINGS

    p = subparsers.add_parser("embed", help="export a pretrained model's embeddings of regions or sequences (HDF5)",
                              description=EMBED_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="pretrained masked LM: a pretraining run directory, its model/, or a checkpoints/step-N.pt")
    p.add_argument("--out", required=True, metavar="OUT.h5", help="HDF5 file to write")
    _inputs(p)
    p.add_argument("--pooling", choices=POOLINGS, help="over positions; none keeps every position")
    p.add_argument("--layer", type=int, help="hidden state: 0 embedding, i block i, -1 the last (final norm)")
    p.add_argument("--dtype", choices=DTYPES, help="stored type")
    settings.add_arguments(p, "embed", "pooling=max layer=1")
    p.set_defaults(func=run_embed_command)

    p = subparsers.add_parser("predict", help="apply a fine-tuned classifier to new regions or sequences",
                              description=PREDICT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--head", required=True, metavar="FINETUNED_DIR",
                   help="fine-tuned classifier: a genomamba finetune --out directory or its model/")
    p.add_argument("--out", required=True, metavar="OUT.tsv", help="predictions: OUT.tsv or OUT.tsv.gz")
    _inputs(p)
    p.add_argument("--length-ratio", type=float,
                   help="error for sequences shorter than 1/R or longer than R times the training length (0: off)")
    settings.add_arguments(p, "predict", "batch_size=64 length_ratio=0")
    p.set_defaults(func=run_predict_command)


def _given(args) -> dict:
    return {k: getattr(args, k) for k in ("bed", "genome", "fasta", "tsv")}


def run_embed_command(args) -> int:
    from genomamba.infer.embed import EmbedSettings, run_embed

    chosen = settings.from_args(args, "embed")
    run_embed(EmbedSettings(model=args.model, out=args.out, **_given(args), **chosen),
              command=getattr(args, "command_line", None))
    return 0


def run_predict_command(args) -> int:
    from genomamba.infer.predict import PredictSettings, run_predict

    chosen = settings.from_args(args, "predict")
    run_predict(PredictSettings(head=args.head, out=args.out, **_given(args), **chosen))
    return 0
