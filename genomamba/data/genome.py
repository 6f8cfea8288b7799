"""``Genome``: random access to a tokenized genome (a directory written by ``genomamba tokenize``).

    g = Genome("results/tokens/example")
    g.contigs                         # names, in FASTA order
    g.fetch("chrI", 0, 131072)        # uint8 tokens, 0-based half-open
    g.fetch("chrI", 0, 131072, "-")   # reverse complement of that interval
    g.softmask("chrI", 0, 131072)     # bool, True where the FASTA was lowercase
    g.split("chrI"); g.intervals("val"); g.n_runs("chrI")

Shard files are opened on first use and kept open (with an 8 MiB chunk cache per
dataset); a fetch reads and decompresses only the chunks it overlaps. A ``Genome``
can be pickled (e.g. into DataLoader workers): handles are reopened in each process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from genomamba.data.shards import FORMAT
from genomamba.data.splits import SPLITS
from genomamba.data.vocab import COMPLEMENT, DECODE_BYTES
from genomamba.errors import GenomambaError

MANIFEST = "manifest.json"
_CACHE_BYTES = 8 << 20


class CorruptShard(GenomambaError):
    """A shard's data could not be read back (changed on disk since it was written)."""


class Genome:
    def __init__(self, path):
        path = Path(path)
        manifest_path = path if path.name == MANIFEST and not path.is_dir() else path / MANIFEST
        if not manifest_path.is_file():
            why = "no such directory" if not manifest_path.parent.exists() else f"no {MANIFEST}"
            raise GenomambaError(f"{manifest_path.parent}: {why} (not a tokenized genome; "
                                 "run genomamba tokenize)")
        try:
            with open(manifest_path, encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError) as exc:
            raise GenomambaError(f"{manifest_path}: cannot read the manifest ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise GenomambaError(f"{manifest_path}: not a genomamba token manifest")
        self.root = manifest_path.parent
        self.manifest = manifest
        for shard in manifest["shards"]:
            if not (self.root / shard["file"]).is_file():
                raise GenomambaError(f"{self.root}: shard {shard['file']} listed in {MANIFEST} is missing")
        self._info = {c["name"]: c for c in manifest["contigs"]}
        self.contigs: list[str] = [c["name"] for c in manifest["contigs"]]
        self._regions: dict[str, list[dict]] = {}
        for region in manifest["regions"]:
            self._regions.setdefault(region["contig"], []).append(region)
        self._open()

    # ---- handles (per process) ------------------------------------------------------
    def _open(self) -> None:
        self._pid = os.getpid()
        self._files: dict[str, object] = {}
        self._datasets: dict[tuple[str, str], object] = {}
        self._runs: dict[str, np.ndarray] = {}

    def _dataset(self, name: str, key: str):
        if self._pid != os.getpid():  # forked: h5py handles must not cross processes
            self._open()
        ds = self._datasets.get((name, key))
        if ds is None:
            import h5py
            import hdf5plugin  # noqa: F401  (registers the bitshuffle filter)

            info = self._info[name]
            f = self._files.get(info["shard"])
            if f is None:
                path = self.root / info["shard"]
                try:
                    f = h5py.File(path, "r", rdcc_nbytes=_CACHE_BYTES, rdcc_nslots=10007)
                except OSError as exc:
                    raise GenomambaError(f"{path}: cannot open shard ({exc})") from None
                self._files[info["shard"]] = f
            try:
                ds = f[info["group"]][key]
            except KeyError:
                raise GenomambaError(f"{self.root / info['shard']}, record {name!r}: no {key!r} dataset "
                                     "(damaged shard?)") from None
            self._datasets[(name, key)] = ds
        return ds

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._open()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_files", "_datasets", "_runs", "_pid"):
            state.pop(key)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._open()

    def __repr__(self) -> str:
        return f"Genome({str(self.root)!r}: {len(self.contigs)} contigs, {self.total_length:,} bases)"

    # ---- metadata -----------------------------------------------------------------------
    def __contains__(self, name) -> bool:
        return name in self._info

    def _contig(self, name: str) -> dict:
        info = self._info.get(name)
        if info is None:
            shown = ", ".join(self.contigs[:5]) + (", ..." if len(self.contigs) > 5 else "")
            raise GenomambaError(f"{self.root}: unknown contig {name!r} (contigs: {shown})")
        return info

    def info(self, name: str) -> dict:
        """The manifest entry of a contig (length, sha256, counts, split, shard)."""
        return dict(self._contig(name))

    def length(self, name: str) -> int:
        return int(self._contig(name)["length"])

    @property
    def total_length(self) -> int:
        return sum(c["length"] for c in self._info.values())

    def split(self, name: str) -> str:
        """``"train"``, ``"val"`` or ``"test"`` for a whole contig; ``"mixed"`` if divided."""
        return self._contig(name)["split"]

    def intervals(self, split: str) -> list[tuple[str, int, int]]:
        """Every [start, end) interval of ``split``, in contig order."""
        if split not in SPLITS:
            raise GenomambaError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
        return [(r["contig"], r["start"], r["end"]) for r in self.manifest["regions"] if r["split"] == split]

    def regions(self, name: str) -> list[tuple[int, int, str]]:
        """The (start, end, split) regions of one contig."""
        self._contig(name)
        return [(r["start"], r["end"], r["split"]) for r in self._regions.get(name, [])]

    # ---- sequence ---------------------------------------------------------------------------
    def _bounds(self, name: str, start: int, end: int) -> None:
        length = self.length(name)
        if not 0 <= start <= end <= length:
            raise GenomambaError(f"{self.root}, record {name!r}: interval [{start}, {end}) is outside "
                                 f"[0, {length})")

    def fetch(self, name: str, start: int, end: int, strand: str = "+") -> np.ndarray:
        """Tokens of [start, end) (uint8); strand "-" gives the reverse complement."""
        start, end = int(start), int(end)
        self._bounds(name, start, end)
        if strand not in ("+", "-"):
            raise GenomambaError(f"strand must be '+' or '-', got {strand!r}")
        out = np.empty(end - start, np.uint8)
        if end > start:
            with self._reading(name, "tokens"):
                self._dataset(name, "tokens").read_direct(out, np.s_[start:end])
        if strand == "-":
            out = COMPLEMENT[out[::-1]]
        return out

    def softmask(self, name: str, start: int, end: int) -> np.ndarray:
        """True where [start, end) was lowercase in the FASTA (+ strand)."""
        start, end = int(start), int(end)
        self._bounds(name, start, end)
        if end == start:
            return np.zeros(0, bool)
        first, last = start // 8, (end + 7) // 8
        with self._reading(name, "softmask"):
            packed = self._dataset(name, "softmask")[first:last]
        return np.unpackbits(packed)[start - 8 * first : end - 8 * first].astype(bool)

    def n_runs(self, name: str) -> np.ndarray:
        """[start, end) runs of N, shape (k, 2), int64."""
        self._contig(name)
        runs = self._runs.get(name)
        if runs is None:
            with self._reading(name, "n_runs"):
                runs = self._runs[name] = self._dataset(name, "n_runs")[()].reshape(-1, 2).astype(np.int64)
        return runs.copy()

    def sequence(self, name: str, start: int = 0, end: int | None = None, strand: str = "+") -> str:
        """Upper-case letters of [start, end) (convenience, for small intervals)."""
        end = self.length(name) if end is None else end
        return DECODE_BYTES[self.fetch(name, start, end, strand)].tobytes().decode("ascii")

    def verify(self, name: str, block: int = 1 << 24) -> bool:
        """Recompute the contig's SHA-256 from the shard and compare with the manifest
        (False also when its data no longer decompresses)."""
        sha = hashlib.sha256()
        length = self.length(name)
        try:
            for start in range(0, length, block):
                sha.update(DECODE_BYTES[self.fetch(name, start, min(start + block, length))])
        except CorruptShard:
            return False
        return sha.hexdigest() == self._contig(name)["sha256"]

    @contextlib.contextmanager
    def _reading(self, name: str, key: str):
        """A read that fails in HDF5 (a chunk that no longer decompresses, a damaged index of
        chunks: bytes changed on disk) becomes one line naming the shard and the contig."""
        try:
            yield
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            shard = self.root / self._contig(name)["shard"]
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise CorruptShard(
                f"{shard}, record {name!r}: cannot read {key} ({reason}): the shard is corrupt and this "
                f"contig's SHA-256 cannot match the manifest; `genomamba info --verify {self.root}` checks "
                "every contig (re-run genomamba tokenize to rebuild it)") from None
