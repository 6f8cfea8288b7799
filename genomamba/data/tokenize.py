"""FASTA -> HDF5 shards + manifest.json, written under a temporary name and renamed.

The output directory holds ``shard-*.h5`` and ``manifest.json``. Everything is built
in a hidden sibling directory (``.NAME.XXXX.tmp``) and renamed into place only when
complete, so an interrupted or failed run leaves nothing that looks finished (and a
previous complete output untouched). Shards and manifest carry no timestamps: running
twice on the same input gives byte-identical files.

manifest.json::

    {"format": "genomamba-tokens", "version": 1, "vocab": ["A", ...],
     "source": {"path": ..., "bytes": ...}, "chunk_size": 65536, "compression": "bitshuffle", "shard_size": ...,
     "split_rule": {val_contigs, test_contigs, holdout_bed, val_fraction, test_fraction},
     "shards":  [{"file", "contigs": [...], "bases"}],
     "contigs": [{"name", "length", "shard", "group", "sha256", "n_count", "n_ambiguous",
                  "n_uracil", "softmasked", "split"}],
     "regions": [{"contig", "start", "end", "split"}],
     "totals":  {"contigs", "bases", "n_count", "n_ambiguous", "n_uracil", "softmasked",
                 "train", "val", "test"}}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from genomamba.data.fasta import DEFAULT_BLOCK_SIZE, Piece, RecordEnd, RecordStart, check_fai, stream_fasta
from genomamba.data.shards import (
    COMPRESSION,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_COMPRESSION,
    DEFAULT_SHARD_SIZE,
    FORMAT,
    FORMAT_VERSION,
    ShardWriter,
)
from genomamba.data.splits import SPLITS, SplitSpec, assign_splits, contig_splits, read_bed
from genomamba.data.vocab import VOCAB
from genomamba.errors import GenomambaError
from genomamba.files import atomic_dir

MANIFEST = "manifest.json"


def tokenize_fasta(fasta, out, *, splits: SplitSpec | None = None, shard_size: int = DEFAULT_SHARD_SIZE,
                   chunk_size: int = DEFAULT_CHUNK_SIZE, compression: str = DEFAULT_COMPRESSION,
                   block_size: int = DEFAULT_BLOCK_SIZE, progress: bool | None = None, log=None) -> dict:
    """Tokenize ``fasta`` into the directory ``out``; return the manifest.

    ``progress``: None shows a progress bar on a terminal only, True always, False never.
    ``log``: a function taking one line (default: print to stderr), or False for silence.
    """
    fasta, out = Path(fasta), Path(out)
    splits = splits or SplitSpec()
    splits.check()
    if chunk_size < 1024 or chunk_size % 1024:
        raise GenomambaError(f"chunk size must be a positive multiple of 1024 bases, got {chunk_size}")
    if compression not in COMPRESSION:
        raise GenomambaError(f"compression must be one of {', '.join(COMPRESSION)}, got {compression!r}")
    if shard_size < 1:
        raise GenomambaError(f"shard size must be positive, got {shard_size}")
    holdouts = read_bed(splits.holdout_bed) if splits.holdout_bed else None
    if not fasta.is_file():
        raise GenomambaError(f"{fasta}: no such file" if not fasta.exists() else f"{fasta}: not a file")
    _check_replaceable(out)
    if log is None:
        log = _stderr
    began = time.perf_counter()
    with atomic_dir(out) as tmp:
        manifest = _write(fasta, tmp, splits, holdouts, shard_size, chunk_size, compression, block_size, progress)
        with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
    if log:
        _summarise(manifest, out, time.perf_counter() - began, log)
    return manifest


def _write(fasta, tmp, splits, holdouts, shard_size, chunk_size, compression, block_size, progress) -> dict:
    from tqdm import tqdm

    bar = tqdm(total=fasta.stat().st_size, unit="B", unit_scale=True, desc=f"tokenize {fasta.name}",
               disable=None if progress is None else not progress, file=sys.stderr, leave=False)
    ends: list[RecordEnd] = []
    contigs: list[dict] = []
    with bar, ShardWriter(tmp, shard_size=shard_size, chunk_size=chunk_size, compression=compression,
                          source=str(fasta)) as writer:
        contig = None
        for event in stream_fasta(fasta, block_size=block_size, progress=bar.update):
            if isinstance(event, Piece):
                contig.append(event.tokens, event.lower)
            elif isinstance(event, RecordStart):
                contig = writer.begin(event.name)
                description = event.description
            else:
                assert isinstance(event, RecordEnd)
                attrs = {"description": description, "sha256": event.sha256}
                entry = writer.finish(attrs)
                entry.update(sha256=event.sha256, n_ambiguous=event.n_ambiguous, n_uracil=event.n_uracil)
                contigs.append(entry)
                ends.append(event)
        shards = writer.close()
    check_fai(fasta, ends)
    regions = assign_splits([(c["name"], c["length"]) for c in contigs], splits, holdouts)
    split_of = contig_splits(regions)
    for c in contigs:
        c["split"] = split_of[c["name"]]
    totals = {"contigs": len(contigs)}
    for key in ("length", "n_count", "n_ambiguous", "n_uracil", "softmasked"):
        totals["bases" if key == "length" else key] = sum(c[key] for c in contigs)
    for split in SPLITS:
        totals[split] = sum(r["end"] - r["start"] for r in regions if r["split"] == split)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "vocab": list(VOCAB),
        "source": {"path": str(fasta), "bytes": fasta.stat().st_size},
        "chunk_size": chunk_size,
        "compression": compression,
        "shard_size": shard_size,
        "split_rule": splits.to_dict(),
        "shards": shards,
        "contigs": contigs,
        "regions": regions,
        "totals": totals,
    }


def _check_replaceable(out: Path) -> None:
    """Refuse to replace anything but an earlier output (or an empty directory)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise GenomambaError(f"{out}: exists and is not a directory (--out)")
    foreign = [p.name for p in out.iterdir()
               if not (p.name == MANIFEST or (p.name.startswith("shard-") and p.name.endswith(".h5")))]
    if foreign:
        raise GenomambaError(f"{out}: exists and holds files that are not tokenizer output "
                             f"(e.g. {sorted(foreign)[0]!r}); choose another --out or remove it")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _summarise(manifest: dict, out: Path, seconds: float, log) -> None:
    t = manifest["totals"]
    bases = t["bases"]
    pct = (lambda k: f"{100 * t[k] / bases:.2f}%") if bases else (lambda k: "0%")
    log(f"tokenized {t['contigs']} contig(s), {bases:,} bases ({pct('n_count')} N, "
        f"{pct('softmasked')} soft-masked) into {len(manifest['shards'])} shard(s) in {out} "
        f"in {seconds:.2f} s ({bases / max(seconds, 1e-9) / 1e6:.0f} Mb/s); "
        f"train/val/test {t['train']:,}/{t['val']:,}/{t['test']:,} bases")
    for key, what in (("n_ambiguous", "IUPAC ambiguity codes turned into N"), ("n_uracil", "U turned into T")):
        if t[key]:
            per = [f"{c['name']}: {c[key]:,}" for c in manifest["contigs"] if c[key]]
            more = f" and {len(per) - 10} more contigs" if len(per) > 10 else ""
            log(f"note: {t[key]:,} {what} ({', '.join(per[:10])}{more})")
