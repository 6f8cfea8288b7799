"""``genomamba tokenize`` and ``genomamba info``."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys

from genomamba.errors import GenomambaError

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "KI": 2**10, "MI": 2**20, "GI": 2**30}


def bases(text: str) -> int:
    """A count with an optional suffix: K, M, G (powers of 1000) or Ki, Mi, Gi (of 1024)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]i?)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a count: {text!r} (e.g. 65536, 64Ki, 1G)")
    return int(m.group(1)) * _SUFFIX[(m.group(2) or "").upper()]


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tokenize",
        help="FASTA (plain, gzip or bgzip) -> HDF5 token shards + manifest.json",
        description="Tokenize a FASTA genome into HDF5 shards (tokens, soft-mask, N runs) and a "
                    "manifest.json with the train/val/test split of every contig or region. "
                    "The output directory is written under a temporary name and renamed when complete.",
    )
    p.add_argument("--fasta", required=True, metavar="GENOME.fa[.gz]", help="input FASTA, plain, gzip or bgzip")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (replaced if it holds an earlier output)")
    p.add_argument("--shard-size", type=bases, default="1G", metavar="BASES",
                   help="start a new shard file once one holds this many bases (default 1G = 10^9; "
                        "suffixes K M G are powers of 1000, Ki Mi Gi of 1024)")
    p.add_argument("--chunk-size", type=bases, default="65536", metavar="BASES",
                   help="HDF5 chunk length in bases, a multiple of 1024 (default 64Ki = 65536)")
    p.add_argument("--compression", default="bitshuffle",
                   choices=["bitshuffle", "scaleoffset", "lzf", "gzip", "none"],
                   help="token compression: bitshuffle (LZ4, needs hdf5plugin, the default and fastest), "
                        "scaleoffset (HDF5 built-in, as small, slower to write), lzf, gzip (level 1), none")
    g = p.add_argument_group("splits (default: everything is train)")
    g.add_argument("--val-contigs", nargs="+", action="extend", default=[], metavar="NAME",
                   help="contigs that are wholly validation")
    g.add_argument("--test-contigs", nargs="+", action="extend", default=[], metavar="NAME",
                   help="contigs that are wholly test")
    g.add_argument("--holdout-bed", metavar="BED",
                   help="held-out intervals of the other contigs: chrom, start, end, val|test")
    g.add_argument("--val-fraction", type=fraction, default=0.0, metavar="F",
                   help="last fraction of each other contig before its test part is validation")
    g.add_argument("--test-fraction", type=fraction, default=0.0, metavar="F",
                   help="last fraction of each other contig is test")
    p.add_argument("--buffer-size", type=bases, default="16Mi", metavar="BYTES",
                   help="bytes read at a time (default 16Mi)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run_tokenize)

    p = subparsers.add_parser(
        "info",
        help="show a tokenized genome: contigs, lengths, N and soft-mask fractions, splits",
        description="Print the contigs of a token directory with their lengths, N and soft-masked "
                    "fractions, IUPAC conversions and splits, then the shards and split totals.",
    )
    p.add_argument("tokens", metavar="DIR", help="a directory written by genomamba tokenize")
    p.add_argument("--verify", action="store_true",
                   help="also re-read every contig and check its SHA-256 against the manifest")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run_info)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # unwinds, so the temporary output is removed


def run_tokenize(args) -> int:
    from genomamba.data.splits import SplitSpec
    from genomamba.data.tokenize import tokenize_fasta

    spec = SplitSpec(val_contigs=args.val_contigs, test_contigs=args.test_contigs,
                     holdout_bed=args.holdout_bed, val_fraction=args.val_fraction,
                     test_fraction=args.test_fraction)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        tokenize_fasta(args.fasta, args.out, splits=spec, shard_size=args.shard_size,
                       chunk_size=args.chunk_size, compression=args.compression, block_size=args.buffer_size,
                       progress=False if args.quiet else None, log=False if args.quiet else None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def _count(n: int, noun: str) -> str:
    """``1 contig``, ``2 contigs``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def run_info(args) -> int:
    from genomamba.data.genome import Genome

    g = Genome(args.tokens)
    m = g.manifest
    from tqdm import tqdm

    rows = []
    contigs = tqdm(m["contigs"], desc="verify", unit="contig", file=sys.stderr, leave=False,
                   disable=None if args.verify else True)
    for c in contigs:
        row = {k: c[k] for k in ("name", "length", "n_count", "softmasked", "n_ambiguous", "n_uracil", "split", "shard")}
        if args.verify:
            row["sha256_ok"] = g.verify(c["name"])
        rows.append(row)
    bad = [f"{r['name']} (in {r['shard']})" for r in rows if r.get("sha256_ok") is False]
    if args.json:
        json.dump({"source": m["source"], "totals": m["totals"], "shards": m["shards"], "contigs": rows},
                  sys.stdout, indent=1)
        print()
    else:
        t = m["totals"]
        print(f"{g.root}: {_count(t['contigs'], 'contig')}, {t['bases']:,} bases in "
              f"{_count(len(m['shards']), 'shard')} from {m['source']['path']}")
        header = ["contig", "length", "N", "soft-masked", "IUPAC->N", "U->T", "split"]
        if args.verify:
            header.append("sha256")
        table = [header]
        for r in rows:
            line = [r["name"], f"{r['length']:,}", _pct(r["n_count"], r["length"]),
                    _pct(r["softmasked"], r["length"]), f"{r['n_ambiguous']:,}", f"{r['n_uracil']:,}", r["split"]]
            if args.verify:
                line.append("ok" if r["sha256_ok"] else "MISMATCH")
            table.append(line)
        table.append(["total", f"{t['bases']:,}", _pct(t["n_count"], t["bases"]), _pct(t["softmasked"], t["bases"]),
                      f"{t['n_ambiguous']:,}", f"{t['n_uracil']:,}", ""] + ([""] if args.verify else []))
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            print("  ".join(cell.ljust(w) if i in (0, len(header) - 1) else cell.rjust(w)
                            for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        print("splits: " + ", ".join(f"{s} {t[s]:,} bases ({_pct(t[s], t['bases'])}) in "
                                     f"{_count(len(g.intervals(s)), 'interval')}" for s in ("train", "val", "test")))
        print("shards: " + ", ".join(f"{s['file']} ({_count(len(s['contigs']), 'contig')}, {s['bases']:,} bases)"
                                     for s in m["shards"]))
    if bad:
        raise GenomambaError(f"{g.root}: SHA-256 mismatch for contig(s) {', '.join(bad)}: the data does not match "
                             "the manifest (a damaged shard; re-run genomamba tokenize)")
    return 0
