"""One ``genomamba score`` run split across jobs (the workflow's scattered score entries, or
any batch system), then joined:

    genomamba score ... --out OUT.vcf.gz --part K/N      # K = 1 .. N, each its own job
    genomamba score-gather --out OUT.vcf.gz OUT.part-1-of-N.bcf ... OUT.part-N-of-N.bcf

Part K scores the K-th of N contiguous, nearly equal shares of the records, by count, in
whole chunks of ``chunk_size`` records (``parallel.share``: of the c chunks, chunks
``[(K-1) * c // N, K * c // N)``; a part is empty when N is larger than c), so that each
forward batch is the one a one-process run computes and the scores are bit for bit the same;
into ``OUT-stem.part-K-of-N.bcf`` (``.tsv`` for a TSV OUT; BCF keeps the
values exact), with the full output header, and ``OUT-stem.part-K-of-N.summary.json``: its
counts, its sample of the scores (for the plot) and which part of which output it is. Every
part reads the whole VCF in the checking pass, so all of them agree on the record count and
on the header. The header's ``##genomamba_command`` line records the command without
``--part``: the one-process command whose output the gathered parts equal.

``score-gather`` checks that the parts are parts 1 .. N of one run (the same N, header,
settings and provenance) before it writes anything, then copies them in order through the
ordinary writer (``parallel.merge_parts``, which also joins torchrun's ranks), so that OUT,
its header and its index are byte-identical to what ``genomamba score`` writes in one process
for the same command line without ``--part``; and writes ``OUT-stem.summary.json`` (the same
counts, and ``"gathered"``: each part's records) and ``OUT-stem.scores.png``. The parts are left in place (the workflow marks them
temporary).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections import Counter

from genomamba.errors import GenomambaError
from genomamba.score import parallel
from genomamba.score.output import output_kind, output_stem

_PART = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_part(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)``, 1 <= K <= N."""
    m = _PART.match(str(text))
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise GenomambaError(f"--part {text}: give K/N, part K of N equal shares of the records, "
                             f"with 1 <= K <= N (e.g. --part 2/3)")
    return int(m[1]), int(m[2])


def part_path(out: str, k: int, n: int) -> str:
    """Where ``genomamba score --out OUT --part K/N`` writes its part."""
    suffix = ".tsv" if output_kind(out).startswith("tsv") else ".bcf"
    return f"{output_stem(out)}.part-{k}-of-{n}{suffix}"


def summary_path(part: str) -> str:
    """The part summary beside a part file."""
    return f"{output_stem(part)}.summary.json"


def records_of(k: int, n: int, n_records: int, chunk_size: int) -> tuple[int, int]:
    """The records (0-based, end excluded) part K of N scores: whole chunks (``parallel.share``)."""
    return parallel.share(k - 1, n, 0, n_records, chunk_size)


def command_without_part(command: str) -> str:
    """``command`` without its ``--part K/N`` (or an abbreviation argparse accepts)."""
    words, out, skip = shlex.split(command), [], False
    for word in words:
        if skip:
            skip = False
            continue
        flag, eq, _ = word.partition("=")
        if len(flag) >= 4 and "--part".startswith(flag):
            skip = not eq
            continue
        out.append(word)
    return shlex.join(out)


def part_info(k: int, n: int, span: tuple[int, int], out: str, summary, classes, pll: bool, csi: bool) -> dict:
    """The ``"part"`` entry of a part's summary.json: which part, of which output, and what
    score-gather needs to join it (the score sample for the plot, the writer's settings)."""
    return {"index": k, "of": n, "records": list(span), "out": out, "classes": list(classes or []),
            "pll": pll, "csi": csi, "samples": summary.samples, "seen": dict(summary.seen)}


def _read_part(path: str) -> dict:
    if not os.path.isfile(path):
        raise GenomambaError(f"part {path}: no such file (has its `genomamba score ... --part K/N` job finished?)")
    kind = output_kind(path) if path.lower().endswith((".bcf", ".tsv")) else None
    if kind is None:
        raise GenomambaError(f"part {path}: not a part (genomamba score --part writes OUT-stem.part-K-of-N.bcf or .tsv)")
    summary = summary_path(path)
    try:
        with open(summary) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise GenomambaError(f"part {path}: its summary {summary} is missing") from None
    except (OSError, ValueError) as exc:
        raise GenomambaError(f"part {path}: cannot read its summary {summary}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("part"), dict):
        raise GenomambaError(f"part {path}: {summary} is not a part summary (no \"part\" entry)")
    return {"path": path, "kind": kind, "summary": data}


def _same_run(parts: list[dict]) -> None:
    """Every part must come from the same command (settings, provenance, header)."""
    import pysam

    def settings(part):  # batch_size may differ (chosen from each GPU's free memory): still the same run
        return {k: v for k, v in part["summary"].get("settings", {}).items() if k != "batch_size"}

    first = parts[0]
    keys = ("of", "out", "classes", "pll", "csi")
    headers = {}
    for p in parts:
        what = [k for k in keys if p["summary"]["part"].get(k) != first["summary"]["part"].get(k)]
        what += ["settings"] if settings(p) != settings(first) else []
        what += ["provenance"] if p["summary"].get("provenance") != first["summary"].get("provenance") else []
        if p["kind"] != first["kind"]:
            what.append("file type")
        if p["kind"] == "bcf":
            with pysam.VariantFile(p["path"]) as vf:
                headers[p["path"]] = str(vf.header)
            if headers[p["path"]] != headers[first["path"]]:
                what.append("VCF header")
        if what:
            raise GenomambaError(f"part {p['path']} is not from the run of part {first['path']}: "
                                 f"{', '.join(what)} differ")


def _ordered(parts: list[dict]) -> list[dict]:
    """The parts in order 1 .. N, each exactly once."""
    n = parts[0]["summary"]["part"]["of"]
    by_index = {}
    for p in parts:
        k = p["summary"]["part"]["index"]
        if k in by_index:
            raise GenomambaError(f"parts {by_index[k]['path']} and {p['path']} are both part {k} of {n}")
        by_index[k] = p
    for k in range(1, n + 1):
        if k not in by_index:
            expected = part_path(parts[0]["summary"]["part"]["out"], k, n)
            raise GenomambaError(f"part {k} of {n} is missing: {expected} "
                                 f"(genomamba score ... --part {k}/{n} writes it)")
    return [by_index[k] for k in range(1, n + 1)]


def _summary_of(data: dict):
    from genomamba.score.summary import Summary

    s = Summary()
    s.records, s.alleles, s.scored = data["records"], data["alleles"], data["alleles_scored"]
    s.per_score = Counter(data["scored_by_score"])
    s.skipped = Counter(data["skipped_by_reason"])
    s.samples = {name: list(values) for name, values in data["part"]["samples"].items()}
    s.seen = Counter(data["part"]["seen"])
    return s


def gather(parts: list[str], out: str | None = None) -> dict:
    """Join the parts of a scattered ``genomamba score`` run into ``out`` (default: the
    output they were scored for); returns the summary written to ``OUT-stem.summary.json``."""
    import time
    from dataclasses import make_dataclass

    import pysam

    from genomamba.files import write_json
    from genomamba.score.settings import ScoreSettings
    from genomamba.score.summary import Summary, plot_distribution, profile_table

    started = time.time()
    if not parts:
        raise GenomambaError("score-gather: give the part files (OUT-stem.part-K-of-N.bcf ...)")
    verbosity = pysam.set_verbosity(0)  # htslib's warnings (no index of a part) say nothing useful here
    try:
        read = [_read_part(p) for p in parts]
        _same_run(read)
        ordered = _ordered(read)
    finally:
        pysam.set_verbosity(verbosity)
    first = ordered[0]["summary"]
    info = first["part"]
    out = out or info["out"]
    wants_tsv = output_kind(out).startswith("tsv")
    if wants_tsv != (ordered[0]["kind"] == "tsv"):
        raise GenomambaError(f"--out {out}: the parts are {ordered[0]['kind'].upper()}; gather them into "
                             + ("OUT.tsv or OUT.tsv.gz" if ordered[0]["kind"] == "tsv" else
                                "OUT.vcf.gz, OUT.vcf or OUT.bcf"))
    if os.path.abspath(out) != os.path.abspath(info["out"]):
        print(f"score-gather: note: the parts were scored for {info['out']}; the output's header records "
              "that command line", file=sys.stderr)
    header = None
    verbosity = pysam.set_verbosity(0)
    try:
        if not wants_tsv:
            with pysam.VariantFile(ordered[0]["path"]) as vf:
                header = vf.header.copy()
        parallel.merge_parts(out, [p["path"] for p in ordered], header, info["classes"], provenance=None,
                             csi=info["csi"], pll=info["pll"])
    finally:
        pysam.set_verbosity(verbosity)

    summary = Summary.merge([_summary_of(p["summary"]) for p in ordered])
    rows = {k: sum(p["summary"]["forward_rows"].get(k, 0) for p in ordered) for k in first["forward_rows"]}
    work = make_dataclass("ForwardRows", list(rows))(**rows)  # engine.WorkCounts' fields, without torch
    seconds = sum(p["summary"]["seconds"] for p in ordered)
    settings = ScoreSettings(**{**first["settings"], "out": out})
    stem = output_stem(out)
    plot_distribution(f"{stem}.scores.png", summary.samples)
    result = summary.as_dict(settings, seconds, work, first["provenance"])
    result["gathered"] = [{"part": p["summary"]["part"]["index"], "of": info["of"],
                           "records": p["summary"]["part"]["records"]} for p in ordered]
    if all("profile" in p["summary"] for p in ordered):  # stages summed over the parts
        stages = Counter()
        for p in ordered:
            stages.update({k: v["seconds"] for k, v in p["summary"]["profile"].items() if k != "other"})
        result["profile"], _ = profile_table(dict(stages), seconds)
    write_json(f"{stem}.summary.json", result)
    print(f"score-gather: {len(ordered)} parts -> {out} ({time.time() - started:.1f} s)", file=sys.stderr)
    print(summary.line(seconds), file=sys.stderr)
    return result
