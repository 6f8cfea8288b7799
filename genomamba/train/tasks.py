"""Classification data sets for fine-tuning, read from the formats people have.

``load_examples(path, genome=None)`` picks the reader from the path:

- a directory: the Genomic Benchmarks layout, one class per entry. Either one FASTA file
  per class (``promoter.fa``, ``background.fa.gz``: the class is the file name without its
  FASTA extensions), or one sub-directory per class holding one sequence per file (plain
  sequence text or FASTA; the class is the sub-directory name);
- ``*.bed[.gz]``: ``chrom  start  end  label`` (0-based, end exclusive; an optional 5th
  column is ignored and a 6th, the strand, reverse-complements ``-`` intervals), cut from
  ``genome`` (anything ``genomamba.data.reference.open_reference`` opens); each example is
  named as a samtools region, ``chrom:start-end`` 1-based inclusive (BED ``c 0 10`` is
  ``c:1-10``), with ``(-)`` for a minus-strand interval;
- ``*.tsv[.gz]`` / ``*.txt[.gz]`` / ``*.csv``-free text: ``sequence<TAB>label``, with an
  optional header row naming the columns (``sequence``, ``label``, optionally ``name``).

Every reader returns ``Examples``: names, token arrays (uint8) and string labels (the BED
and TSV parsing is ``genomamba.data.regions``, shared with ``genomamba embed`` and ``predict``). Bad input
raises a one-line ``GenomambaError`` naming the file, record and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from genomamba.data.regions import bed_regions, tsv_regions
from genomamba.data.regions import encode_sequence as _encode
from genomamba.data.regions import open_text as _open_text
from genomamba.data.regions import strip_gz as _strip_gz
from genomamba.errors import GenomambaError, where

FASTA_EXTENSIONS = (".fa", ".fasta", ".fna", ".fas")


@dataclass
class Examples:
    names: list[str] = field(default_factory=list)
    sequences: list[np.ndarray] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sequences)

    def add(self, name: str, tokens: np.ndarray, label: str) -> None:
        self.names.append(name)
        self.sequences.append(tokens)
        self.labels.append(label)


def load_examples(path, genome=None) -> Examples:
    path = os.fspath(path)
    if os.path.isdir(path):
        examples = read_fasta_folder(path)
    elif not os.path.exists(path):
        raise GenomambaError(f"{path}: no such file or directory")
    elif _strip_gz(path).lower().endswith(".bed"):
        if genome is None:
            raise GenomambaError(f"{path}: a BED task needs the genome (--genome FASTA or token shards)")
        examples = read_bed(path, genome)
    else:
        examples = read_tsv(path)
    if len(examples) == 0:
        raise GenomambaError(f"{path}: no examples")
    return examples


def class_names(labels) -> list[str]:
    """Sorted distinct labels; numerically when every label is an integer."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)


def label_ids(examples: Examples, classes: list[str], path) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(examples.labels) - set(index))
    if unknown:
        raise GenomambaError(
            f"{path}: label(s) {', '.join(map(repr, unknown[:5]))} not among the training classes {classes}"
        )
    return np.array([index[label] for label in examples.labels], dtype=np.int64)


# --- readers -----------------------------------------------------------------------------


def read_tsv(path) -> Examples:
    return _examples(tsv_regions(path, labelled=True))


def read_bed(path, genome) -> Examples:
    return _examples(bed_regions(path, genome, labelled=True))


def _examples(regions) -> Examples:
    examples = Examples()
    for region in regions:
        examples.add(region.name, region.tokens, region.label)
    return examples


def read_fasta_folder(path) -> Examples:
    examples = Examples()
    entries = sorted(os.listdir(path))
    class_dirs = [e for e in entries if os.path.isdir(os.path.join(path, e)) and not e.startswith(".")]
    class_files = [e for e in entries if _strip_gz(e).lower().endswith(FASTA_EXTENSIONS)]
    if class_dirs and class_files:
        raise GenomambaError(f"{path}: mixes class sub-directories and class FASTA files; use one layout")
    if class_files:
        for entry in class_files:
            label = _class_from_filename(entry)
            for name, seq, lineno in _read_fasta(os.path.join(path, entry)):
                examples.add(name, _encode(seq, os.path.join(path, entry), name, lineno), label)
    else:
        for label in class_dirs:
            folder = os.path.join(path, label)
            for entry in sorted(os.listdir(folder)):
                file = os.path.join(folder, entry)
                if entry.startswith(".") or not os.path.isfile(file):
                    continue
                for name, seq, lineno in _read_fasta(file, default_name=os.path.splitext(entry)[0]):
                    examples.add(f"{label}/{name}", _encode(seq, file, name, lineno), label)
    if not class_dirs and not class_files:
        raise GenomambaError(
            f"{path}: no class FASTA files ({', '.join(FASTA_EXTENSIONS)}[.gz]) or class sub-directories"
        )
    return examples


# --- helpers -----------------------------------------------------------------------------


def _read_fasta(path, default_name=None):
    """Yield (name, sequence, line) per record; a file without '>' is one raw sequence."""
    name, parts, start = None, [], 1
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    yield name, "".join(parts), start
                name, parts, start = (line[1:].split() or [f"line{lineno}"])[0], [], lineno
            elif line:
                if name is None:
                    if default_name is None:
                        raise GenomambaError(f"{where(path, line=lineno)}: sequence before the first '>' header")
                    name, start = default_name, lineno
                parts.append(line)
    if name is not None:
        yield name, "".join(parts), start


def _class_from_filename(entry: str) -> str:
    stem = _strip_gz(entry)
    return stem[: stem.rfind(".")]
