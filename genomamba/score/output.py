"""Writers for scored variants: VCF (plain, bgzipped or BCF, through pysam) or TSV.

VCF: every input record is written, in order, with these INFO fields (declared in the
header, ``Number=A``: one value per ALT, ``.`` where there is none):

    GM_LLR          zero-shot log p(ALT) - log p(REF) (SNVs)
    GM_EMB          embedding cosine distance, REF vs ALT window
    GM_HEAD_<class> fine-tuned classifier: p(class | ALT window) - p(class | REF window)
    GM_SKIP         why an ALT was not scored

TSV: one row per ALT (one row with ALT ``.`` for a record without ALT):
``CHROM POS ID REF ALT GM_LLR GM_EMB [GM_HEAD_<class> ...] GM_SKIP``.

Both are written to a temporary file next to the target and renamed at ``close()``.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re

import pysam

from genomamba.errors import GenomambaError
from genomamba.files import AtomicFile

INFO_DESCRIPTIONS = {
    "GM_LLR": "genomamba zero-shot score of an SNV: log p(ALT) - log p(REF) at the masked variant "
              "position, window centred on the variant, both strands",
    "GM_EMB": "genomamba embedding distance: cosine distance between the mean embeddings of the "
              "REF and ALT windows",
    "GM_SKIP": "genomamba: why this ALT was not scored",
}


def head_fields(classes) -> list[str]:
    names = [f"GM_HEAD_{re.sub(r'[^A-Za-z0-9_.]', '_', str(c))}" for c in classes]
    if len(set(names)) != len(names):
        raise GenomambaError(f"class names {classes} do not give distinct INFO field names")
    return names


def output_kind(path: str) -> str:
    lower = path.lower()
    for suffix, kind in ((".vcf.gz", "vcf.gz"), (".vcf.bgz", "vcf.gz"), (".vcf", "vcf"), (".bcf", "bcf"),
                         (".tsv.gz", "tsv.gz"), (".tsv", "tsv")):
        if lower.endswith(suffix):
            return kind
    raise GenomambaError(f"--out {path}: name it .vcf.gz, .vcf, .bcf, .tsv or .tsv.gz")


def output_stem(path: str) -> str:
    kind = output_kind(path)
    return path[: -len(kind) - 1] if not path.lower().endswith(".vcf.bgz") else path[:-8]


def fields_for(classes) -> list[str]:
    return ["GM_LLR", "GM_EMB", *head_fields(classes or []), "GM_SKIP"]


def values_for(alleles, scores, classes) -> dict[str, list]:
    """Per field, one value (or None) per allele."""
    names = head_fields(classes or [])
    out = {name: [] for name in fields_for(classes)}
    for allele, s in zip(alleles, scores):
        out["GM_LLR"].append(None if s is None else s.llr)
        out["GM_EMB"].append(None if s is None else s.emb)
        for j, name in enumerate(names):
            out[name].append(None if s is None or s.head is None else float(s.head[j]))
        out["GM_SKIP"].append(allele.skip)
    return out


class _AtomicWriter:
    """Writes to a temporary file (``self._out``) that becomes ``path`` on close and is
    discarded on abort, so a failed run leaves nothing half-written."""

    def close(self) -> None:
        self._out.close()
        self._file.commit()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._out.close()
        self._file.discard()


class VcfWriter(_AtomicWriter):
    def __init__(self, path: str, header: pysam.VariantHeader, classes=None):
        self.path, self.classes = path, classes
        kind = output_kind(path)
        header = header.copy()
        for name in fields_for(classes):
            description = INFO_DESCRIPTIONS.get(name) or (
                f"genomamba fine-tuned classifier: p({name[8:]} | ALT window) - p({name[8:]} | REF window)")
            type_ = "String" if name == "GM_SKIP" else "Float"
            if name in header.info:
                have = header.info[name]
                if (str(have.number), have.type) != ("A", type_):
                    raise GenomambaError(
                        f"input VCF already declares INFO {name} as Number={have.number},Type={have.type}; "
                        f"genomamba writes Number=A,Type={type_}")
                continue
            header.info.add(name, "A", type_, description)
        self._file = AtomicFile(path)
        mode = {"vcf.gz": "wz", "vcf": "w", "bcf": "wb"}[kind]
        self._out = pysam.VariantFile(self._file.tmp, mode, header=header)

    def write(self, record, alleles, scores) -> None:
        record.translate(self._out.header)
        if record.alts:
            for name, values in values_for(alleles, scores, self.classes).items():
                if all(v is None for v in values):
                    if name in record.info:
                        del record.info[name]
                elif name == "GM_SKIP":
                    record.info[name] = tuple(v or "." for v in values)
                else:
                    record.info[name] = tuple(values)
        self._out.write(record)


class TsvWriter(_AtomicWriter):
    def __init__(self, path: str, classes=None):
        self.classes = classes
        self._file = AtomicFile(path)
        opener = gzip.open if output_kind(path) == "tsv.gz" else open
        self._out = opener(self._file.tmp, "wt")
        self._out.write("\t".join(["CHROM", "POS", "ID", "REF", "ALT", *fields_for(classes)]) + "\n")

    def write(self, record, alleles, scores) -> None:
        values = values_for(alleles, scores, self.classes)
        alts = record.alts or (".",)
        for j, allele in enumerate(alleles):
            row = [record.contig, str(record.pos), record.id or ".", record.ref, alts[allele.index]]
            row += [_fmt(values[name][j]) for name in values]
            self._out.write("\t".join(row) + "\n")


def open_writer(path: str, header, classes=None):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if output_kind(path).startswith("tsv"):
        return TsvWriter(path, classes)
    return VcfWriter(path, header, classes)


def _fmt(value) -> str:
    if value is None:
        return "."
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
