"""The ``genomamba track`` subcommand."""

from __future__ import annotations

import argparse

from genomamba import settings

TRACK_HELP = """\
Score every position of the reference (or of --regions) with a pretrained masked LM: one
forward pass per position, that position [MASK]ed in its reference window (both strands),
as `genomamba score` computes GM_LLR; the three ALT LLRs, log p(ALT) - log p(REF), come
from that one pass. OUT.bw (bigWig) holds one value per position (--score); positions whose
reference base is not A/C/G/T have none. --all-alts OUT.tsv.gz adds every ALT's LLR
(bgzipped, tabix-indexed). An interrupted run keeps its finished parts in OUT.bw.parts/ and
reuses them when rerun with the same model, reference, regions and window.
--masks-per-window K (the approximate mode, opt-in) masks K positions per window, K times
fewer passes; the scores then differ from the exact ones (each position also sees the other
masks, off its window's middle), and the run prints their agreement with exact scores
computed at a sample of positions (agreement_sample).
Settings: the defaults in genomamba/configs/track.yaml, then --config, then KEY=VALUE
overrides, then the flags below.
"""

SCORES = ("min-llr", "mean-llr", "entropy", "ref-logp")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "track", help="per-position masked-LM scores over a genome, as bigWig",
        description=TRACK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="pretrained masked LM: a pretraining run directory, its model/, or a checkpoints/step-N.pt")
    p.add_argument("--reference", required=True, metavar="GENOME",
                   help="reference genome: FASTA (plain or bgzip) or token-shard directory")
    p.add_argument("--regions", metavar="BED", help="regions to score (default: every contig, whole)")
    p.add_argument("--out", required=True, metavar="OUT.bw", help="bigWig output (.bw or .bigwig)")
    p.add_argument("--score", choices=SCORES, help="the value written per position")
    p.add_argument("--all-alts", metavar="OUT.tsv.gz",
                   help="also write chrom, pos, ref and the LLR of each of A, C, G, T as ALT (bgzip + .tbi)")
    p.add_argument("--window", type=int,
                   help="bases around each position (default: the model's pretraining window, else 1024)")
    p.add_argument("--batch-size", type=int, help="windows per forward pass (default: on a GPU what half its free memory holds, at most 256; else 65536 / window, 1 to 64)")
    p.add_argument("--masks-per-window", type=int, metavar="K",
                   help="approximate mode: K positions mask-spacing apart [MASK]ed per pass (K times faster; "
                        "prints its agreement with exact scores on a sample); default 1, exact")
    p.add_argument("--mask-spacing", type=int, metavar="BASES", help="bases between the masks of one window (default 128)")
    p.add_argument("--device", help="auto (GPU if there is one; the default), cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"),
                   help="auto (the default): bf16 autocast on GPU, fp32 on CPU")
    settings.add_arguments(p, "track", "window=2048 score=entropy")
    p.set_defaults(func=run_track_command)


def run_track_command(args) -> int:
    from genomamba.track.run import TrackSettings, run_track

    chosen = settings.from_args(args, "track")
    run_track(TrackSettings(model=args.model, reference=args.reference, regions=args.regions, out=args.out,
                            all_alts=args.all_alts, **chosen))
    return 0
