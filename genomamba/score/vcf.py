"""The input VCF: opening it, iterating its records with readable errors, the checking
pass against the reference, and declaring in the output header what htslib learned
from undeclared contigs and tags."""

from __future__ import annotations

import gzip
import os
from collections import Counter

from genomamba.data.progress import Progress
from genomamba.data.vcf_index import check_index
from genomamba.errors import GenomambaError
from genomamba.score.variants import is_symbolic, reference_problem

MAX_LISTED = 5  # problem records named in the checking pass's error


def open_vcf(path):
    import pysam

    if not os.path.exists(path):
        raise GenomambaError(f"{path}: no such VCF")
    check_index(path)
    try:
        return pysam.VariantFile(path)
    except (ValueError, OSError) as exc:
        raise GenomambaError(f"{path}: cannot read as VCF/BCF ({exc})") from None


def header_line_count(path) -> int:
    """Lines before the first record (for error messages); 0 for BCF."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    n = 0
    try:
        with opener(path, "rb") as fh:
            for line in fh:
                if not line.startswith(b"#"):
                    break
                n += 1
    except (OSError, EOFError):
        return 0
    return n


def records(vf, path, offset: int = 0):
    """Iterate records, turning pysam's parse errors into one-line GenomambaErrors
    (``offset``: header lines, for the line number)."""
    n = 0
    it = iter(vf)
    while True:
        try:
            rec = next(it)
        except StopIteration:
            return
        except (ValueError, OSError) as exc:
            line = f", line {offset + n + 1}" if offset else ""
            raise GenomambaError(f"{path}, record {n + 1}{line}: malformed VCF record ({exc})") from None
        n += 1
        yield rec


def check_pass(path, reference, skip_ref_mismatch: bool):
    """First pass: (record count, the learned header, whether any ALT is symbolic)."""
    vf = open_vcf(path)
    offset = header_line_count(path)
    problems, listed = Counter(), []
    n, symbolic = 0, False
    with Progress(records(vf, path, offset), desc="check", unit="rec", leave=False) as checked:
        for n, rec in enumerate(checked, 1):
            symbolic = symbolic or any(is_symbolic(a) for a in rec.alts or ())
            problem = reference_problem(rec, reference)
            if problem:
                problems[problem[0]] += 1
                if len(listed) < MAX_LISTED:
                    line = f", line {offset + n}" if offset else ""
                    listed.append(f"{problem[1]} (record {n}{line})")
    header = vf.header
    vf.close()
    total = sum(problems.values())
    if total and not skip_ref_mismatch:
        more = f"; and {total - len(listed)} more" if total > len(listed) else ""
        raise GenomambaError(
            f"{path}: {total} record(s) do not match the reference {reference.path}: "
            f"{'; '.join(listed)}{more}. Use --skip-ref-mismatch to flag and skip them"
        )
    return n, header, symbolic


def declare_learned(header, learned, symbolic: bool) -> None:
    """Declare in ``header`` what htslib learned from undeclared uses while reading, and
    INFO/END when there are symbolic alleles (pysam adds END to such records when their
    INFO changes; BCF output needs it declared)."""
    if symbolic and "END" not in header.info:
        header.info.add("END", 1, "Integer", "Stop position of the interval")
    for name in learned.contigs:
        if name not in header.contigs:
            header.contigs.add(name)
    for table_name in ("info", "formats"):
        have, seen = getattr(header, table_name), getattr(learned, table_name)
        for key, meta in seen.items():
            if key not in have:
                have.add(key, meta.number, meta.type, meta.description)
    for key, meta in learned.filters.items():
        if key not in header.filters:
            header.filters.add(key, None, None, meta.description)
