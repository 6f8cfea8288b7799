"""The ``genomamba score`` subcommand."""

from __future__ import annotations

import argparse

from genomamba import settings

SCORE_HELP = """\
Score the variants of a VCF (plain, bgzipped or BCF) with a pretrained model, and
optionally a fine-tuned classifier. Every ALT of every record gets, where it applies:
GM_LLR (SNVs: log p(ALT) - log p(REF) at the masked position, both strands), GM_EMB
(any sequence allele: cosine distance between REF and ALT window embeddings),
GM_HEAD_<class> (--head: classifier probability, ALT minus REF window), or GM_SKIP (why
not). OUT.vcf.gz/.vcf/.bcf keeps every input record and adds these INFO fields; OUT.tsv
has one row per ALT. Also writes OUT-stem.summary.json and OUT-stem.scores.png.
Settings: the defaults in genomamba/configs/score.yaml, then --config, then KEY=VALUE
overrides, then the flags below.
"""


GATHER_HELP = """\
Join the N parts of a scattered score run (`genomamba score ... --out OUT --part K/N`, for
K = 1 .. N, e.g. one cluster job each) into OUT, in record order: the same bytes, header and
index as `genomamba score ... --out OUT` run in one process, plus OUT-stem.summary.json (the
same counts) and OUT-stem.scores.png. Every part (and its OUT-stem.part-K-of-N.summary.json)
must be there and come from the same command; otherwise nothing is written.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score", help="score VCF variants with a pretrained (and optionally fine-tuned) model",
        description=SCORE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="pretrained masked LM: a pretraining run directory (pretrain --out), its model/, or "
                        "one of its checkpoints/step-N.pt")
    p.add_argument("--reference", required=True, metavar="GENOME",
                   help="reference genome: FASTA (plain or bgzip) or token-shard directory")
    p.add_argument("--vcf", required=True, metavar="IN.vcf[.gz]", help="variants to score")
    p.add_argument("--out", required=True, metavar="OUT", help="OUT.vcf.gz, OUT.vcf, OUT.bcf, OUT.tsv or OUT.tsv.gz")
    p.add_argument("--head", metavar="FINETUNED_DIR", help="fine-tuned classifier (genomamba finetune --out DIR)")
    p.add_argument("--window", type=int,
                   help="bases around each variant (made odd: the variant sits in the middle; default: the "
                        "model's pretraining window, recorded in its config.json, else 1024)")
    p.add_argument("--head-window", type=int,
                   help="window for --head (default: the classifier's training sequence length)")
    p.add_argument("--scores", help="comma-separated zero-shot scores: llr, emb, pll (GM_PLL: any allele; opt-in)")
    p.add_argument("--skip-ref-mismatch", action="store_true", default=None,
                   help="flag and skip records whose REF, contig or position disagrees with the reference "
                        "(default: stop with an error listing them)")
    p.add_argument("--batch-size", type=int,
                   help="windows per forward pass (default: on a GPU what half its free memory holds, at most 256; "
                        "else 65536 / window, 1 to 64)")
    p.add_argument("--chunk-size", type=int, help="records read and scored at a time")
    p.add_argument("--device", help="auto (GPU if there is one; the default), cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"),
                   help="auto (the default): bf16 autocast on GPU, fp32 on CPU")
    p.add_argument("--profile", action="store_true", default=None,
                   help="time each stage (VCF check, parsing, windows, copies to the GPU, forward, writing) and "
                        "print a table of seconds and percent; also in summary.json")
    p.add_argument("--part", metavar="K/N",
                   help="score only part K of N equal shares of the records (by count), into "
                        "OUT-stem.part-K-of-N.bcf (.tsv for a TSV OUT) and its .summary.json; join the N parts "
                        "with `genomamba score-gather` (each part can be its own cluster job)")
    settings.add_arguments(p, "score", "window=2048 scores=[llr]")
    p.set_defaults(func=run_score_command)

    g = subparsers.add_parser(
        "score-gather", help="join the parts of a `genomamba score --part K/N` run into one output",
        description=GATHER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("parts", nargs="+", metavar="PART",
                   help="the parts, OUT-stem.part-K-of-N.bcf (or .tsv), K = 1 .. N, in any order")
    g.add_argument("--out", metavar="OUT",
                   help="the output (default: the --out the parts were scored for)")
    g.set_defaults(func=run_gather_command)


def run_score_command(args) -> int:
    from genomamba.score.run import ScoreSettings, run_score

    from genomamba.score.scatter import parse_part

    part = parse_part(args.part) if args.part is not None else None
    chosen = settings.from_args(args, "score")
    run_score(ScoreSettings(model=args.model, reference=args.reference, vcf=args.vcf, out=args.out,
                            head=args.head, **chosen), command=getattr(args, "command_line", None), part=part)
    return 0


def run_gather_command(args) -> int:
    from genomamba.score.scatter import gather

    gather(args.parts, args.out)
    return 0
