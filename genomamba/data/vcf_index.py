"""Check the index beside a VCF/BCF before reading it.

pysam opens a bgzipped VCF's ``.tbi`` (or a BCF's ``.csi``) whenever one is beside the
file; a corrupt index only prints htslib's messages (several ``[E::...]`` lines) and is
then ignored, or misleads a region query. ``check_index(path)`` loads it quietly and turns
a failure into one line naming the index, so every reader of scored VCFs (score's input,
evaluate) reports it the same way.
"""

from __future__ import annotations

import os

from genomamba.errors import GenomambaError

INDEX_SUFFIXES = (".tbi", ".csi")


def check_index(path) -> None:
    """Raise ``GenomambaError`` if an index beside ``path`` exists but cannot be read."""
    import pysam

    path = os.fspath(path)
    for suffix in INDEX_SUFFIXES:
        index = path + suffix
        if not os.path.isfile(index):
            continue
        previous = pysam.set_verbosity(0)  # htslib's own messages: we say it in one line
        try:
            with pysam.VariantFile(path, index_filename=index) as vf:
                ok = vf.index is not None
        except (OSError, ValueError):  # the VCF itself is unreadable: its reader says so
            return
        finally:
            pysam.set_verbosity(previous)
        if not ok:
            raise GenomambaError(
                f"{index}: the index of {os.path.basename(path)} is corrupt (cannot be read); delete it and "
                f"rebuild it (`tabix -p vcf {path}` or `bcftools index`), or rerun the command that wrote it")
