"""Scatter and gather of a scattered `genomamba track` entry (workflow/rules/track.smk,
``parts: N``). The unit is the track's own part (``genomamba.track.plan.plan_parts``: the
regions, sorted and merged, cut into pieces of at most ``part_size`` bases, the unit a rerun
resumes from); the parts are dealt into N groups of consecutive parts with nearly equal bases
(or, where that leaves a group empty, nearly equal numbers of parts).

split:  one BED per group, ``DIR/part-K-of-N.bed`` (K = 1 .. N): the group's parts, each a
        BED line. `genomamba track --regions` on it plans exactly those parts again (touching
        parts merge back and are cut at the same places), so every forward batch is the one
        the unscattered run computes.
gather: one bigWig from the N groups' bigWigs, written through the track's own writer
        (``genomamba.track.output.BigWigWriter``) part by part, as the unscattered run writes
        it; and, with --all-alts, one TSV from the groups' TSVs, through ``AltsWriter``
        (bgzip + tabix). Nothing is written if a group's file is missing.

Run by the track_split and track_gather rules (Snakemake ``script:``), or by hand:

    python workflow/scripts/track_parts.py split REFERENCE REGIONS|- PART_SIZE N DIR
    python workflow/scripts/track_parts.py gather REFERENCE REGIONS|- PART_SIZE OUT.bw [OUT.tsv.gz|-] GROUP_DIR...

(a GROUP_DIR holds track.bw and, with --all-alts, all_alts.tsv.gz).
"""

import gzip
import os
import sys

import numpy as np

from genomamba.data.reference import open_reference
from genomamba.errors import GenomambaError
from genomamba.track.plan import plan_parts


def groups_of(parts, n):
    """The group (0-based) of each part: consecutive, nearly equal bases (by each part's middle)."""
    total = sum(p.length for p in parts)
    out, before = [], 0
    for p in parts:
        out.append(min(n - 1, (2 * before + p.length) * n // (2 * total)))
        before += p.length
    return out


def plan(reference, regions, part_size, n):
    parts = plan_parts(reference, regions, int(part_size))
    if len(parts) < n:
        raise GenomambaError(f"parts: {n}, but the regions make only {len(parts)} track part(s) of at most "
                             f"{part_size} bases (part_size); ask for fewer parts or a smaller part_size")
    groups = groups_of(parts, n)
    if len(set(groups)) < n:  # a group without a part (parts of very unequal length): deal by count
        groups = [i * n // len(parts) for i in range(len(parts))]
    return parts, groups


def split(reference, regions, part_size, n, directory):
    ref = open_reference(reference)
    parts, groups = plan(ref, regions, part_size, n)
    os.makedirs(directory, exist_ok=True)
    for k in range(n):
        lines = [f"{p.contig}\t{p.start}\t{p.end}\n" for p, g in zip(parts, groups) if g == k]
        path = os.path.join(directory, f"part-{k + 1}-of-{n}.bed")
        with open(path + ".tmp", "w") as fh:
            fh.writelines(lines)
        os.replace(path + ".tmp", path)


def gather(reference, regions, part_size, out, all_alts, group_dirs):
    import pyBigWig

    from genomamba.track.output import AltsWriter, BigWigWriter

    ref = open_reference(reference)
    parts, groups = plan(ref, regions, part_size, len(group_dirs))
    need = ["track.bw"] + (["all_alts.tsv.gz"] if all_alts else [])
    for d in group_dirs:
        for name in need:
            if not os.path.isfile(os.path.join(d, name)):
                raise GenomambaError(f"{os.path.join(d, name)} is missing (has that track_part job finished?)")
    if all_alts:  # the bodies in order, as the unscattered run writes them
        writer = AltsWriter(all_alts)
        try:
            for d in group_dirs:
                with gzip.open(os.path.join(d, "all_alts.tsv.gz"), "rt") as fh:
                    next(fh, None)
                    for line in fh:
                        writer.fh.write(line)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    bigwig = BigWigWriter(out, [(c, ref.length(c)) for c in ref.contigs if ref.length(c)])
    opened = [pyBigWig.open(os.path.join(d, "track.bw")) for d in group_dirs]
    try:
        for part, g in zip(parts, groups):
            values = np.asarray(opened[g].values(part.contig, part.start, part.end), dtype=np.float32)
            bigwig.add(part.contig, part.start, values)
        bigwig.close()
    except BaseException:
        bigwig.abort()
        raise
    finally:
        for bw in opened:
            bw.close()


def _none(value):
    return None if value in (None, "", "-") else value


if __name__ == "__main__":
    try:
        if "snakemake" in globals():
            sm = globals()["snakemake"]
            p = sm.params
            if sm.rule == "track_split":
                split(p.reference, _none(p.regions), p.part_size, p.parts, sm.output.beds)
            else:  # track_gather: the output is a directory
                os.makedirs(sm.output[0], exist_ok=True)
                gather(p.reference, _none(p.regions), p.part_size, os.path.join(sm.output[0], "track.bw"),
                       _none(p.all_alts), list(sm.input.groups))
        elif sys.argv[1:2] == ["split"]:
            reference, regions, part_size, n, directory = sys.argv[2:7]
            split(reference, _none(regions), int(part_size), int(n), directory)
        elif sys.argv[1:2] == ["gather"]:
            reference, regions, part_size, out, alts, *dirs = sys.argv[2:]
            gather(reference, _none(regions), int(part_size), out, _none(alts), dirs)
        else:
            sys.exit(__doc__)
    except GenomambaError as exc:
        sys.exit(f"track_parts: error: {exc}")
