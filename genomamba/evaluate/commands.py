"""The ``genomamba evaluate`` subcommand."""

from __future__ import annotations

import argparse

from genomamba import settings

EVALUATE_HELP = """\
Evaluate a variant score against labels: how well it separates the positive labels from
the negative ones. Reads scored variants (genomamba score output: VCF/BCF, or TSV) and
labels (--labels LABELS.tsv with a header and the columns CHROM POS REF ALT label, one
ALT per row; or --label-field INFO_KEY of the scored VCF). Writes DIR/metrics.json (AUROC,
exact with ties, AUPRC, 95% bootstrap CIs, counts), DIR/report.md and DIR/roc.png. With
--reference, also a k-mer baseline fitted on that reference (the same LLR from context
counts). Settings: the defaults in genomamba/configs/evaluate.yaml, then --config, then
KEY=VALUE overrides, then the flags below.
"""


def _labels(text):
    return [v.strip() for v in text.split(",") if v.strip()]


def register(subparsers) -> None:
    d = settings.packaged("evaluate")
    p = subparsers.add_parser(
        "evaluate", help="evaluate variant scores against labels (AUROC, AUPRC, k-mer baseline)",
        description=EVALUATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--vcf", required=True, metavar="SCORED", help="scored variants: .vcf[.gz], .bcf or .tsv[.gz]")
    p.add_argument("--labels", metavar="LABELS.tsv", help="labels: CHROM POS REF ALT label (header required)")
    p.add_argument("--label-field", metavar="INFO_KEY", help="read labels from this INFO field instead")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--reference", metavar="GENOME",
                   help="FASTA or token shards of the scored reference: adds the k-mer baseline")
    p.add_argument("--score", help=f"INFO field (TSV column) to evaluate (default {d['score']})")
    p.add_argument("--positive", type=_labels, metavar="LABEL[,LABEL]", help="labels of the positive class")
    p.add_argument("--negative", type=_labels, metavar="LABEL[,LABEL]", help="labels of the negative class")
    p.add_argument("--higher-is-positive", action="store_true", default=None,
                   help="a high score means positive (default: low, as for an LLR)")
    p.add_argument("--allow-missing", action="store_true", default=None,
                   help="count labelled variants without a score (default: stop with an error)")
    p.add_argument("--stratify", choices=("substitution",), help="also AUROC within each SNV type")
    p.add_argument("--bootstrap", type=int, help=f"bootstrap replicates for the CIs (default {d['bootstrap']})")
    p.add_argument("--seed", type=int, help=f"bootstrap seed (default {d['seed']})")
    p.add_argument("--kmer-flank", type=int, help=f"k-mer baseline context per side (default {d['kmer_flank']})")
    settings.add_arguments(p, "evaluate", "bootstrap=200")
    p.set_defaults(func=run_evaluate_command)


def run_evaluate_command(args) -> int:
    from genomamba.evaluate.run import EvaluateSettings, run_evaluate

    chosen = settings.from_args(args, "evaluate")
    run_evaluate(EvaluateSettings(scored=args.vcf, out=args.out, labels=args.labels, reference=args.reference,
                                  **chosen))
    return 0
