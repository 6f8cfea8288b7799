"""``genomamba score``: stream a VCF, score each ALT, write every record back out.

0. The models are located and loaded first (``genomamba.model.locate``), so a wrong
   ``--model`` or ``--head`` is reported before the VCF is read.
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
   (``<out stem>.scores.png``). A VCF/BCF output gets its index and ``##genomamba_*``
   provenance header lines (``genomamba.score.output``); the same provenance goes into
   summary.json.

This module runs those passes; the parts live beside it: ``settings`` (ScoreSettings),
``vcf`` (reading and checking the input), ``models`` (loading the checkpoints),
``engine`` (scoring), ``output`` (writing) and ``summary`` (statistics and the plot).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import sys
import time

from genomamba.data.progress import Progress
from genomamba.data.reference import open_reference
from genomamba.errors import GenomambaError
from genomamba.files import write_json
from genomamba.score.models import load_models, locate_models
from genomamba.score.settings import ScoreSettings, default_batch_size
from genomamba.score import parallel, scatter
from genomamba.score.summary import Summary, plot_distribution, profile_table
from genomamba.score.variants import record_alleles, reference_problem
from genomamba.score.vcf import check_pass, declare_learned, open_vcf, records

__all__ = ["ScoreSettings", "run_score"]

TBI_MAX_LENGTH = 2**29 - 1  # longer contigs need a CSI index


def run_score(s: ScoreSettings, command: str | None = None, part: tuple[int, int] | None = None) -> dict:
    """Score ``s.vcf`` into ``s.out``; ``command``: the command line to record in the output
    (default: this process's). ``part=(K, N)``: score only part K of N of the records, into
    ``scatter.part_path(s.out, K, N)`` and its part summary (``genomamba.score.scatter``)."""
    import pysam
    import torch

    from genomamba.device import resolve_device
    from genomamba.score.engine import StageTimer, VariantScorer
    from genomamba.distributed import from_env, start, teardown
    from genomamba.score.output import open_writer, output_stem

    output_stem(s.out)  # fails early on an unknown output suffix
    found = locate_models(s)  # a wrong --model or --head is reported before any data is read
    s.check(found.model)
    share = from_env()  # torchrun: this process's share of the records
    if part is not None:  # the header records the command whose output the gathered parts equal
        command = scatter.command_without_part(command or "genomamba " + shlex.join(sys.argv[1:]))
    target = scatter.part_path(s.out, *part) if part is not None else s.out
    started = time.time()
    timer = StageTimer(enabled=s.profile)
    verbosity = pysam.set_verbosity(0)  # our own messages say what htslib's warnings would
    try:
        device = resolve_device(parallel.device_name(share, s.device))
        start(share, device)
        if s.batch_size is None:
            s.batch_size = default_batch_size(s.window, device)
        with timer("load"):
            model, head, classes, head_window = load_models(s, found, device)
        reference = open_reference(s.reference)
        with timer("check"):
            n_records, learned, symbolic = check_pass(s.vcf, reference, s.skip_ref_mismatch)
        scorer = VariantScorer(model, reference, s.window, device, s.batch_size, s.precision,
                               s.scores, head, head_window, pll_flank=s.pll_flank)
        scorer.timer = timer
        provenance = provenance_of(s, found, scorer, device, command)
        vf = open_vcf(s.vcf)
        declare_learned(vf.header, learned, symbolic)
        csi = _needs_csi(reference, vf.header)
        within = scatter.records_of(*part, n_records, s.chunk_size) if part is not None else None
        rank_part = parallel.part_path(target, share.rank, share.world) if share.world > 1 else None
        writer = open_writer(rank_part or target, vf.header, classes, provenance, csi=csi, pll="pll" in s.scores,
                             index=rank_part is None and part is None)
        summary = Summary()
        try:
            failure = None
            try:
                records_here = parallel.span(share, n_records, within, s.chunk_size)
                with torch.inference_mode():
                    _score_stream(vf, reference, scorer, writer, summary, records_here, s, timer,
                                  show=share.is_main)
                with timer("write"):
                    writer.close()
            except Exception as exc:
                writer.abort()
                if share.world == 1:
                    raise
                failure = str(exc) if isinstance(exc, GenomambaError) else f"{type(exc).__name__}: {exc}"
            except BaseException:
                writer.abort()
                raise
            if share.world > 1:
                summary = _gather_and_merge(share, s, target, failure, summary, scorer, timer, vf.header,
                                            classes, provenance, csi, index=part is None)
        finally:
            if rank_part is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(rank_part)
        vf.close()
    finally:
        pysam.set_verbosity(verbosity)
    teardown()
    if not share.is_main:
        return {}
    stem = output_stem(target)
    if part is None:  # a part's plot is score-gather's, from the parts' samples
        with timer("plot"):
            plot_distribution(f"{stem}.scores.png", summary.samples)
    seconds = time.time() - started
    result = summary.as_dict(s, seconds, scorer.work, provenance)
    if s.profile:  # stages summed over the processes
        result["profile"], table = profile_table(timer.seconds, seconds * share.world)
    if part is not None:
        result["part"] = scatter.part_info(*part, within, s.out, summary, classes, "pll" in s.scores, csi)
    write_json(f"{stem}.summary.json", result)
    reference.keep_index()
    line = summary.line(seconds)
    if part is not None:
        line = line.replace("score: ", f"score: part {part[0]} of {part[1]} -> {target}: ", 1)
    print(line, file=sys.stderr)
    if s.profile:
        print(table, file=sys.stderr)
    return result


def provenance_of(s: ScoreSettings, found, scorer, device, command: str | None) -> dict:
    """What made this output: the ``##genomamba_*`` header lines and summary.json's
    ``provenance`` (window: the bases each window spans, the given one made odd)."""
    import shlex

    from genomamba import __version__
    from genomamba.device import uses_bf16

    out = {
        "version": __version__,
        "command": command or "genomamba " + shlex.join(sys.argv[1:]),
        "model": {"path": found.model.path, "weights_sha256": found.model.sha256},
    }
    if found.head is not None:
        out["head"] = {"path": found.head.path, "weights_sha256": found.head.sha256}
    out["window"] = scorer.windows.span
    if found.head is not None:
        out["head_window"] = scorer.head_windows.span
    out["precision"] = "bf16" if uses_bf16(device, s.precision) else "fp32"
    return out


def _needs_csi(reference, header) -> bool:
    lengths = [reference.length(c) for c in reference.contigs]
    lengths += [c.length for c in header.contigs.values() if c.length]
    return max(lengths, default=0) > TBI_MAX_LENGTH


def _gather_and_merge(share, s, target, failure, summary, scorer, timer, header, classes, provenance, csi,
                      index=True) -> Summary:
    """Several processes: exchange failures, summaries, work and stage times; rank 0 copies
    the parts into ``target`` (the others wait for it, so that their parts outlive the copy)."""
    ranks = share.gather_objects((failure, summary, scorer.work, timer.seconds))
    parallel.raise_failures([r[0] for r in ranks])
    for _, _, work, seconds in ranks[1:]:
        for name, rows in vars(work).items():
            setattr(scorer.work, name, getattr(scorer.work, name) + rows)
        for stage, value in seconds.items():
            timer.seconds[stage] = timer.seconds.get(stage, 0.0) + value
    try:
        if share.is_main:
            with timer("merge"):
                parallel.merge_parts(target, [parallel.part_path(target, rank, share.world)
                                              for rank in range(share.world)],
                                     header, classes, provenance, csi=csi, pll="pll" in s.scores, index=index)
    finally:
        share.barrier()
    return Summary.merge([r[1] for r in ranks])


def _score_stream(vf, reference, scorer, writer, summary, span, s, timer, show=True) -> None:
    """Score records ``span`` (0-based, end excluded) of ``vf`` into ``writer``."""
    start, stop = span
    stream = itertools.islice(records(vf, s.vcf), start, stop)
    with Progress(total=stop - start, desc="score", unit="rec", enabled=show) as bar:
        while True:
            with timer("parse"):
                chunk = list(itertools.islice(stream, s.chunk_size))
                per_record = []
                for i, rec in enumerate(chunk):
                    problem = reference_problem(rec, reference)
                    alleles = record_alleles(rec, i, problem[0] if problem else None)
                    for a in alleles:
                        if a.skip is None and not any(scorer.wants(a).values()):
                            a.skip = ("not_snv" if set(s.scores) == {"llr"} and not s.head
                                      else "allele_longer_than_window")
                    per_record.append(alleles)
            if not chunk:
                break
            flat = [a for alleles in per_record for a in alleles]
            scores = scorer.score(flat)
            k = 0
            with timer("write"):
                for rec, alleles in zip(chunk, per_record):
                    these = scores[k : k + len(alleles)]
                    k += len(alleles)
                    writer.write(rec, alleles, these)
                    summary.records += 1
                    for a, sc in zip(alleles, these):
                        summary.add(a, sc)
            bar.update(len(chunk))
