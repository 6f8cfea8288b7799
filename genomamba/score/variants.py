"""VCF records -> alleles to score, and the checks that decide what is scored.

Each ALT of a record becomes one ``Allele``. REF/ALT are trimmed of their shared suffix,
then of their shared prefix (keeping one base each), so that ``REF=ACT ALT=A,GCT`` gives a
deletion and an SNV at POS. Problems are reasons, recorded per ALT (``SKIP_REASONS``):

- record level (``--skip-ref-mismatch`` decides whether they are errors): the contig is not
  in the reference, REF runs past the contig end, REF disagrees with the reference
  (``N`` on either side matches anything);
- allele level (always skipped, never errors): a record without ALT, a symbolic ALT
  (``<DEL>``, ``*``, breakends), letters other than A/C/G/T/N, an allele too long for the
  window, or (with only the SNV score asked for) an allele that is not an SNV.
"""

from __future__ import annotations

from dataclasses import dataclass

from genomamba.data import encode

REFERENCE_PROBLEMS = ("unknown_contig", "beyond_contig_end", "ref_mismatch")
SKIP_REASONS = REFERENCE_PROBLEMS + (
    "no_alt", "symbolic_allele", "invalid_allele", "allele_longer_than_window", "not_snv",
)
_NUCLEOTIDES = set("ACGTN")


@dataclass
class Allele:
    """One ALT of one record; ``pos`` is 0-based, after trimming."""

    record: int  # index of the record in the chunk
    index: int  # ALT index within the record
    contig: str
    pos: int
    ref: str
    alt: str
    skip: str | None = None

    @property
    def is_snv(self) -> bool:
        return len(self.ref) == 1 == len(self.alt) and self.ref in "ACGT" and self.alt in "ACGT"


def is_symbolic(alt: str) -> bool:
    return alt.startswith("<") or "[" in alt or "]" in alt or alt == "*" or "." in alt


def trim(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Drop the shared suffix, then the shared prefix, keeping at least one base of each."""
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    return pos, ref, alt


def reference_problem(record, reference) -> tuple[str, str] | None:
    """(reason, detail) when the record does not fit the reference, else None."""
    contig, ref = record.contig, (record.ref or "").upper()
    if contig not in reference:
        return "unknown_contig", f"{contig}:{record.pos} contig {contig!r} is not in the reference"
    length = reference.length(contig)
    if record.start < 0 or record.start + len(ref) > length:
        return "beyond_contig_end", (
            f"{contig}:{record.pos} REF {_short(ref)} runs past the end of {contig} ({length} bases)"
        )
    if set(ref) - _NUCLEOTIDES:
        return None  # reported per ALT as invalid_allele
    have = reference.fetch(contig, record.start, record.start + len(ref))
    want = encode(ref)
    agree = (have == want) | (have == 4) | (want == 4)
    if not agree.all():
        from genomamba.data import decode

        return "ref_mismatch", f"{contig}:{record.pos} REF {_short(ref)} but the reference has {_short(decode(have))}"
    return None


def record_alleles(record, number: int, reference_reason: str | None) -> list[Allele]:
    """The ALTs of one record as ``Allele``s, each with its skip reason (or None).

    A record without ALT yields one allele with ``alt='.'`` and reason ``no_alt``."""
    ref = (record.ref or "").upper()
    alts = record.alts or ()
    if not alts:
        return [Allele(number, 0, record.contig, record.start, ref, ".", reference_reason or "no_alt")]
    out = []
    for i, raw in enumerate(alts):
        alt = raw.upper()
        if reference_reason:
            reason = reference_reason
        elif is_symbolic(alt):
            reason = "symbolic_allele"
        elif set(alt) - _NUCLEOTIDES or set(ref) - _NUCLEOTIDES or not ref:
            reason = "invalid_allele"
        else:
            reason = None
        if reason:
            out.append(Allele(number, i, record.contig, record.start, ref, alt, reason))
            continue
        pos, r, a = trim(record.start, ref, alt)
        out.append(Allele(number, i, record.contig, pos, r, a))
    return out


def _short(seq: str, n: int = 12) -> str:
    return seq if len(seq) <= n else f"{seq[:n]}...({len(seq)} bases)"
