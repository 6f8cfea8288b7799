"""``genomamba score``: stream a VCF, score each ALT, write every record back out.

1. A checking pass reads the VCF once (records are not kept) and compares every record
   with the reference: unknown contig, REF past the contig end, REF mismatch. Any such
   record is an error listing the first ones, unless ``skip_ref_mismatch`` (then they are
   flagged ``GM_SKIP`` and counted). It also counts records for the progress bar and
   learns contigs/tags used but not declared in the header (they are declared in the output).
2. The scoring pass reads ``chunk_size`` records at a time, scores their ALTs in batches
   (``genomamba.score.engine``), writes them in input order and forgets them, so memory
   does not grow with the VCF.
3. The run ends with a summary of scored and skipped counts by reason, printed and written
   to ``<out stem>.summary.json``, and a plot of the score distributions
   (``<out stem>.scores.png``).

This module runs those passes; the parts live beside it: ``settings`` (ScoreSettings),
``vcf`` (reading and checking the input), ``models`` (loading the checkpoints),
``engine`` (scoring), ``output`` (writing) and ``summary`` (statistics and the plot).
"""

from __future__ import annotations

import itertools
import sys
import time

from tqdm import tqdm

from genomamba.data.reference import open_reference
from genomamba.files import write_json
from genomamba.score.models import load_models
from genomamba.score.settings import ScoreSettings
from genomamba.score.summary import Summary, plot_distribution
from genomamba.score.variants import record_alleles, reference_problem
from genomamba.score.vcf import check_pass, declare_learned, open_vcf, records

__all__ = ["ScoreSettings", "run_score"]


def run_score(s: ScoreSettings) -> dict:
    import pysam
    import torch

    from genomamba.score.engine import VariantScorer
    from genomamba.score.output import open_writer, output_stem
    from genomamba.device import resolve_device

    s.check()
    output_stem(s.out)  # fails early on an unknown output suffix
    started = time.time()
    verbosity = pysam.set_verbosity(0)  # our own messages say what htslib's warnings would
    try:
        reference = open_reference(s.reference)
        n_records, learned, symbolic = check_pass(s.vcf, reference, s.skip_ref_mismatch)
        device = resolve_device(s.device)
        model, head, classes, head_window = load_models(s, device)
        scorer = VariantScorer(model, reference, s.window, device, s.batch_size, s.precision,
                               s.scores, head, head_window)
        vf = open_vcf(s.vcf)
        declare_learned(vf.header, learned, symbolic)
        writer = open_writer(s.out, vf.header, classes)
        summary = Summary()
        try:
            with torch.inference_mode():
                _score_stream(vf, reference, scorer, writer, summary, n_records, s)
        except BaseException:
            writer.abort()
            raise
        writer.close()
        vf.close()
    finally:
        pysam.set_verbosity(verbosity)
    seconds = time.time() - started
    result = summary.as_dict(s, seconds, scorer.work)
    stem = output_stem(s.out)
    write_json(f"{stem}.summary.json", result)
    plot_distribution(f"{stem}.scores.png", summary.samples)
    print(summary.line(), file=sys.stderr)
    return result


def _score_stream(vf, reference, scorer, writer, summary, n_records, s) -> None:
    stream = records(vf, s.vcf)
    bar = tqdm(total=n_records, desc="score", unit="rec", mininterval=1)
    while True:
        chunk = list(itertools.islice(stream, s.chunk_size))
        if not chunk:
            break
        per_record = []
        for i, rec in enumerate(chunk):
            problem = reference_problem(rec, reference)
            alleles = record_alleles(rec, i, problem[0] if problem else None)
            for a in alleles:
                if a.skip is None and not any(scorer.wants(a).values()):
                    a.skip = "not_snv" if set(s.scores) == {"llr"} and not s.head else "allele_longer_than_window"
            per_record.append(alleles)
        flat = [a for alleles in per_record for a in alleles]
        scores = scorer.score(flat)
        k = 0
        for rec, alleles in zip(chunk, per_record):
            these = scores[k : k + len(alleles)]
            k += len(alleles)
            writer.write(rec, alleles, these)
            summary.records += 1
            for a, sc in zip(alleles, these):
                summary.add(a, sc)
        bar.update(len(chunk))
    bar.close()
