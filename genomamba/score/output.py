"""Writers for scored variants: VCF (plain, bgzipped or BCF, through pysam) or TSV.

VCF: every input record is written, in order, with these INFO fields (declared in the
header, ``Number=A``: one value per ALT, ``.`` where there is none):

    GM_LLR          zero-shot log p(ALT) - log p(REF) (SNVs)
    GM_EMB          embedding cosine distance, REF vs ALT window
    GM_PLL          (scores with pll) pseudo-log-likelihood difference, ALT minus REF window
    GM_HEAD_<class> fine-tuned classifier: p(class | ALT window) - p(class | REF window)
    GM_SKIP         why an ALT was not scored

TSV: one row per ALT (one row with ALT ``.`` for a record without ALT):
``CHROM POS ID REF ALT GM_LLR GM_EMB [GM_PLL] [GM_HEAD_<class> ...] GM_SKIP``.

Both are written to a temporary file next to the target and renamed at ``close()``; a
``.vcf.gz`` gets a tabix index beside it (``.tbi``, or ``.csi`` for contigs over 2^29
bases), a ``.bcf`` a ``.csi``, and the VCF header ``##genomamba_*`` lines recording the
version, command line, model, window and precision.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import sys

import pysam

from genomamba.errors import GenomambaError
from genomamba.files import AtomicFile, raise_if_full

INFO_DESCRIPTIONS = {
    "GM_LLR": "genomamba zero-shot score of an SNV: log p(ALT) - log p(REF) at the masked variant "
              "position, window centred on the variant, both strands",
    "GM_EMB": "genomamba embedding distance: cosine distance between the mean embeddings of the "
              "REF and ALT windows",
    "GM_PLL": "genomamba pseudo-log-likelihood difference (nats): sum of masked-LM log p(base) over the "
              "changed bases and a flank, ALT window minus REF window, both strands",
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


def fields_for(classes, pll: bool = False) -> list[str]:
    return ["GM_LLR", "GM_EMB", *(["GM_PLL"] if pll else []), *head_fields(classes or []), "GM_SKIP"]


def values_for(alleles, scores, classes, pll: bool = False) -> dict[str, list]:
    """Per field, one value (or None) per allele."""
    names = head_fields(classes or [])
    out = {name: [] for name in fields_for(classes, pll)}
    for allele, s in zip(alleles, scores):
        out["GM_LLR"].append(None if s is None else s.llr)
        out["GM_EMB"].append(None if s is None else s.emb)
        if pll:
            out["GM_PLL"].append(None if s is None else s.pll)
        for j, name in enumerate(names):
            out[name].append(None if s is None or s.head is None else float(s.head[j]))
        out["GM_SKIP"].append(allele.skip)
    return out


class _AtomicWriter:
    """Writes to a temporary file (``self._out``) that becomes ``path`` on close and is
    discarded on abort, so a failed run leaves nothing half-written."""

    #: the run's other outputs beside this one (its summary and plot), removed just before this
    #: file is renamed into place: the new file never sits beside an earlier run's summary, and
    #: the summary, written last, marks the set finished (``open_writer`` sets it for outputs)
    replaces: tuple = ()

    def _drop_replaced(self) -> None:
        for path in self.replaces:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    def close(self) -> None:
        self._out.close()
        self._drop_replaced()
        self._file.commit()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._out.close()
        self._file.discard()


class VcfWriter(_AtomicWriter):
    """``provenance``: ``##genomamba_KEY=VALUE`` header lines; ``csi``: index .vcf.gz as CSI
    (contigs longer than TBI's 2^29 bases), not TBI (BCF always gets a CSI)."""

    def __init__(self, path: str, header: pysam.VariantHeader, classes=None, provenance=None, csi=False,
                 pll=False, index=True):
        self.path, self.classes, self.pll, self.index = path, classes, pll, index
        self.kind, self.csi = output_kind(path), csi or output_kind(path) == "bcf"
        kind = self.kind
        header = header.copy()
        for name in fields_for(classes, pll):
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
        for key, value in (provenance or {}).items():
            if isinstance(value, dict):  # {"path": P, "weights_sha256": H} -> P;weights_sha256=H
                first, *rest = value.items()
                value = ";".join([str(first[1])] + [f"{k}={v}" for k, v in rest if v is not None])
            header.add_line(f"##genomamba_{key}={value}")
        self._file = AtomicFile(path)
        self._sorted, self._last, self._contigs_seen = True, (None, -1), set()
        mode = {"vcf.gz": "wz", "vcf": "w", "bcf": "wb"}[kind]
        self._out = pysam.VariantFile(self._file.tmp, mode, header=header)

    def write(self, record, alleles, scores) -> None:
        self._note_order(record)
        record.translate(self._out.header)
        if record.alts:
            for name, values in values_for(alleles, scores, self.classes, self.pll).items():
                if all(v is None for v in values):
                    if name in record.info:
                        del record.info[name]
                elif name == "GM_SKIP":
                    record.info[name] = tuple(v or "." for v in values)
                else:
                    record.info[name] = tuple(values)
        self._out.write(record)

    def close(self) -> None:
        """Rename the file into place, then its index (built on the temporary, so that a
        failure leaves neither; the index is renamed last, so it is never older)."""
        self._out.close()
        if self.kind == "vcf" or not self.index:  # not index: a part (genomamba.score.parallel)
            return self._file.commit()
        index = AtomicFile(self.path + (".csi" if self.csi else ".tbi")) if self._sorted else None
        try:
            if index is not None:
                pysam.tabix_index(self._file.tmp, preset="bcf" if self.kind == "bcf" else "vcf", force=True,
                                  csi=self.csi, index=index.tmp)
        except BaseException:
            try:
                raise_if_full(self._file.tmp)  # tabix_index reports a failed write without its errno
            finally:
                index.discard()
                self._file.discard()
            raise
        for stale in (".tbi", ".csi"):  # an earlier run's index must not describe the new file
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path + stale)
        self._drop_replaced()
        self._file.commit()
        if index is not None:
            index.commit()
        else:  # records are written in the input's order
            print(f"score: {self.path} is not indexed: the input's records are not sorted by position "
                  "(`bcftools sort` it, then `bcftools index` it)", file=sys.stderr)

    def _note_order(self, record) -> None:
        """Whether the records so far are sorted (contigs in blocks, positions not decreasing)."""
        if record.contig != self._last[0]:
            if record.contig in self._contigs_seen:
                self._sorted = False
            self._contigs_seen.add(record.contig)
        elif record.start < self._last[1]:
            self._sorted = False
        self._last = (record.contig, record.start)


    def copy_from(self, path: str) -> None:
        """Append the records of ``path``, a part written by a VcfWriter with the same header."""
        with pysam.VariantFile(path) as part:
            for record in part:
                self._note_order(record)
                record.translate(self._out.header)
                self._out.write(record)


class TsvWriter(_AtomicWriter):
    def __init__(self, path: str, classes=None, pll=False):
        self.classes, self.pll = classes, pll
        self._file = AtomicFile(path)
        opener = gzip.open if output_kind(path) == "tsv.gz" else open
        self._out = opener(self._file.tmp, "wt")
        self._out.write("\t".join(["CHROM", "POS", "ID", "REF", "ALT", *fields_for(classes, pll)]) + "\n")

    def write(self, record, alleles, scores) -> None:
        values = values_for(alleles, scores, self.classes, self.pll)
        alts = record.alts or (".",)
        for j, allele in enumerate(alleles):
            row = [record.contig, str(record.pos), record.id or ".", record.ref, alts[allele.index]]
            row += [_fmt(values[name][j]) for name in values]
            self._out.write("\t".join(row) + "\n")

    def copy_from(self, path: str) -> None:
        """Append the rows of ``path``, a part written by a TsvWriter (its header line skipped)."""
        with open(path) as part:
            next(part, None)
            for line in part:
                self._out.write(line)


def open_writer(path: str, header, classes=None, provenance=None, csi=False, pll=False, index=True):
    """The writer for ``path``'s kind; VCF/BCF get the ``provenance`` header lines and an index."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if output_kind(path).startswith("tsv"):
        writer = TsvWriter(path, classes, pll)
    else:
        writer = VcfWriter(path, header, classes, provenance, csi, pll, index)
    if index:  # an output, not a part: its summary and plot are rewritten after it
        stem = output_stem(path)
        writer.replaces = (f"{stem}.summary.json", f"{stem}.scores.png")
    return writer


def _fmt(value) -> str:
    if value is None:
        return "."
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
