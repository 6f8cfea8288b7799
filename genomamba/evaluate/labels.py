"""Reading scored variants and their labels, and joining the two.

Scored variants: a VCF (plain, bgzip or BCF, read with pysam; the score is an INFO field,
one value per ALT for ``Number=A``) or a TSV with a header naming ``CHROM POS REF ALT``
and the score column (``genomamba score --out X.tsv``; ``.`` or empty is no score).

Labels: a LABELS.tsv with a header and the columns ``CHROM POS REF ALT label`` (1-based
POS, one ALT per row, any order, extra columns ignored), or ``label_field``: an INFO field
(a column of a TSV) of the scored file itself; several values of one field are joined
with ``,``.

A variant is ``(CHROM, POS, REF, ALT)`` with REF and ALT upper-cased. A variant listed
twice, in either file, is an error naming both lines (records).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field

import numpy as np

from genomamba.data.vcf_index import check_index
from genomamba.errors import GenomambaError, where

LABEL_COLUMNS = ("CHROM", "POS", "REF", "ALT", "label")


@dataclass
class Scored:
    """Per variant key: (score or None, label or None, where it was read)."""

    path: str
    values: dict = field(default_factory=dict)


def _key(chrom, pos, ref, alt):
    return (str(chrom), int(pos), str(ref).upper(), str(alt).upper())


def _add(table: dict, key, value, path, at):
    if key in table:
        raise GenomambaError(f"{where(path, line=at) if isinstance(at, int) else where(path, at)}: "
                             f"variant {describe(key)} listed twice (first at {table[key][-1]})")
    table[key] = (*value, at)


def describe(key) -> str:
    chrom, pos, ref, alt = key
    return f"{chrom}:{pos} {ref}>{alt}"


def _open_text(path):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gz else open(path)


def _rows(path):
    """(line number, header fields, row fields) of a tab-separated file with a header; blank
    lines and ``#`` lines before the header's ``#CHROM`` are skipped."""
    header = None
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip() or (line.startswith("##") and header is None):
                    continue
                fields = line.split("\t")
                if header is None:
                    header = [f.lstrip("#").strip() for f in fields]
                    yield lineno, header, None
                    continue
                yield lineno, header, fields
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise GenomambaError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    if header is None:
        raise GenomambaError(f"{path}: empty file (expected a header line)")


def _columns(header, wanted, path, lineno):
    index = {}
    lower = {h.lower(): i for i, h in reversed(list(enumerate(header)))}
    for name in wanted:
        if name.lower() not in lower:
            raise GenomambaError(f"{where(path, line=lineno)}: header has no {name!r} column "
                                 f"(need {' '.join(wanted)}; found {' '.join(header)})")
        index[name] = lower[name.lower()]
    return index


def _position(text, path, lineno):
    try:
        pos = int(text)
    except ValueError:
        pos = 0
    if pos < 1:
        raise GenomambaError(f"{where(path, line=lineno)}: POS must be a positive integer (1-based), got {text!r}")
    return pos


def read_labels(path) -> dict:
    """{variant key: (label, line)} from a LABELS.tsv."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise GenomambaError(f"{path}: labels file not found")
    labels: dict = {}
    cols = None
    for lineno, header, fields in _rows(path):
        if fields is None:
            cols = _columns(header, LABEL_COLUMNS, path, lineno)
            continue
        if len(fields) != len(header):
            raise GenomambaError(f"{where(path, line=lineno)}: {len(fields)} fields, the header has {len(header)}")
        chrom, ref, alt, label = (fields[cols[c]].strip() for c in ("CHROM", "REF", "ALT", "label"))
        pos = _position(fields[cols["POS"]].strip(), path, lineno)
        if not chrom or not ref or not alt or not label:
            raise GenomambaError(f"{where(path, line=lineno)}: empty CHROM, REF, ALT or label")
        if "," in alt:
            raise GenomambaError(f"{where(path, line=lineno)}: one ALT per row, got {alt!r}")
        _add(labels, _key(chrom, pos, ref, alt), (label,), path, lineno)
    if not labels:
        raise GenomambaError(f"{path}: no labelled variants (only a header)")
    return labels


def read_scored(path, score_field: str, label_field: str | None = None) -> Scored:
    """Every ALT of the scored file: its score (None if absent) and, with ``label_field``,
    its label (None if absent)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise GenomambaError(f"{path}: scored variants not found")
    lower = path.lower()
    if lower.endswith((".tsv", ".tsv.gz", ".txt", ".txt.gz")):
        return _read_scored_tsv(path, score_field, label_field)
    return _read_scored_vcf(path, score_field, label_field)


def _number(text, path, lineno, column):
    if text in ("", ".", "NA", "nan", "NaN"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise GenomambaError(f"{where(path, line=lineno)}: {column} {text!r} is not a number") from None
    return None if np.isnan(value) else value


def _read_scored_tsv(path, score_field, label_field) -> Scored:
    out = Scored(path)
    cols = None
    for lineno, header, fields in _rows(path):
        if fields is None:
            wanted = ("CHROM", "POS", "REF", "ALT", score_field) + ((label_field,) if label_field else ())
            cols = _columns(header, wanted, path, lineno)
            continue
        if len(fields) != len(header):
            raise GenomambaError(f"{where(path, line=lineno)}: {len(fields)} fields, the header has {len(header)}")
        pos = _position(fields[cols["POS"]].strip(), path, lineno)
        key = _key(fields[cols["CHROM"]].strip(), pos, fields[cols["REF"]].strip(), fields[cols["ALT"]].strip())
        score = _number(fields[cols[score_field]].strip(), path, lineno, score_field)
        label = fields[cols[label_field]].strip() if label_field else None
        _add(out.values, key, (score, label if label not in ("", ".") else None), path, lineno)
    return out


def _info_values(record, name, number, n_alts):
    """One value per ALT of INFO ``name`` (None where absent)."""
    if name not in record.info:
        return [None] * n_alts
    value = record.info[name]
    if number == "A":
        return [None if v is None else v for v in value]
    if isinstance(value, tuple):
        value = ",".join(str(v) for v in value if v is not None) or None
    return [value] * n_alts


def _read_scored_vcf(path, score_field, label_field) -> Scored:
    import pysam

    check_index(path)
    try:
        vcf = pysam.VariantFile(path)
    except (OSError, ValueError) as exc:
        raise GenomambaError(f"{path}: cannot read as VCF/BCF ({exc})") from None
    out = Scored(path)
    with vcf:
        info = vcf.header.info
        for name in (score_field, label_field):
            if name and name not in info:
                raise GenomambaError(f"{path}: the header declares no INFO field {name!r} "
                                     f"(have: {', '.join(info) or 'none'})")
        if info[score_field].type not in ("Float", "Integer"):
            raise GenomambaError(f"{path}: INFO {score_field} is {info[score_field].type}, not a number")
        score_number = str(info[score_field].number)
        label_number = str(info[label_field].number) if label_field else None
        try:
            for i, record in enumerate(vcf, 1):
                alts = record.alts or ()
                scores = _info_values(record, score_field, score_number, len(alts))
                labels = _info_values(record, label_field, label_number, len(alts)) if label_field else [None] * len(alts)
                for alt, score, label in zip(alts, scores, labels):
                    at = f"record {i} ({record.contig}:{record.pos})"
                    _add(out.values, _key(record.contig, record.pos, record.ref, alt),
                         (None if score is None else float(score), None if label is None else str(label)), path, at)
        except (OSError, ValueError) as exc:
            raise GenomambaError(f"{path}: cannot read record ({exc})") from None
    return out


@dataclass
class Joined:
    """Labelled, scored variants of the two classes, and the counts of the rest."""

    keys: list
    scores: np.ndarray  # as read (not oriented)
    is_positive: np.ndarray
    n_missing: int  # labelled in a class, no score
    missing_examples: list
    other_labels: dict  # label in neither class -> count
    n_unlabelled: int  # scored ALTs without a label


def join(scored: Scored, labels: dict | None, labels_path: str | None, positive, negative) -> Joined:
    """Variants of either class with their scores; without ``labels`` the labels are those
    read with the scored file."""
    positive, negative = set(positive), set(negative)
    source = labels if labels is not None else {k: (v[1], v[2]) for k, v in scored.values.items() if v[1] is not None}
    keys, scores, is_pos, missing, other = [], [], [], [], {}
    for key, (label, at) in source.items():
        if label in positive:
            cls = True
        elif label in negative:
            cls = False
        else:
            other[label] = other.get(label, 0) + 1
            continue
        score = scored.values.get(key, (None,))[0]
        if score is None:
            missing.append((key, at))
            continue
        keys.append(key)
        scores.append(score)
        is_pos.append(cls)
    found = labels_path if labels is not None else scored.path
    for name, wanted in (("positive", positive), ("negative", negative)):
        n = sum(1 for label, _ in source.values() if label in wanted)
        if n == 0:
            seen = ", ".join(sorted({str(label) for label, _ in source.values()})) or "none"
            raise GenomambaError(f"{found}: no variant labelled {' or '.join(sorted(wanted))} "
                                 f"(the {name} class); labels found: {seen}")
    n_unlabelled = sum(1 for k, v in scored.values.items() if k not in source) if labels is not None else \
        sum(1 for v in scored.values.values() if v[1] is None)
    return Joined(keys, np.asarray(scores, dtype=np.float64), np.asarray(is_pos, dtype=bool), len(missing),
                  missing[:5], other, n_unlabelled)
