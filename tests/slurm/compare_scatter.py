#!/usr/bin/env python3
"""Compare a scattered score entry's output (parts: N, gathered) with the same entry scored in
one job, within one run's results/:

    python tests/slurm/compare_scatter.py RESULTS WHOLE SCATTERED

WHOLE and SCATTERED are score entry names with the same settings (only `parts` differs), so
their outputs must be the same but for the output's own path:
* results/score/NAME.vcf.gz: every record line identical; every header line identical except
  ``##genomamba_command``, which must be the same after SCATTERED's output path is replaced
  by WHOLE's (the command records --out);
* NAME.vcf.gz.tbi: fetching every contig through the index gives the same records (the
  index's bytes differ: block offsets follow the header's length);
* NAME.summary.json: the same counts, score statistics and forward rows; settings equal but
  for ``out``, provenance equal but for the command (as above);
* SCATTERED's summary lists 3 or more parts, none empty (its "gathered" entry);
* NAME.scores.png: exists;
* the temporary parts (NAME.part-K-of-N.*) are gone.
Prints one line per check and exits 1 on any difference.
"""
import gzip
import json
import sys
from pathlib import Path

import pysam

COUNTS = ("records", "alleles", "alleles_scored", "scored_by_score", "skipped_by_reason", "score_stats",
          "forward_rows")


def main():
    results, whole, scattered = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    score = results / "score"
    a_path, b_path = f"results/score/{whole}.vcf.gz", f"results/score/{scattered}.vcf.gz"
    bad = []

    def check(ok, what):
        print(f"  {'same' if ok else 'DIFF'}  {what}")
        if not ok:
            bad.append(what)

    a_lines = gzip.open(score / f"{whole}.vcf.gz", "rt").read().splitlines()
    b_lines = gzip.open(score / f"{scattered}.vcf.gz", "rt").read().splitlines()
    a_head = [x for x in a_lines if x.startswith("#")]
    b_head = [x for x in b_lines if x.startswith("#")]
    a_recs, b_recs = a_lines[len(a_head):], b_lines[len(b_head):]
    command = "##genomamba_command="
    check(len(a_recs) > 0 and a_recs == b_recs, f"{len(a_recs)} records of {scattered}.vcf.gz and {whole}.vcf.gz")
    check([x for x in a_head if not x.startswith(command)] == [x for x in b_head if not x.startswith(command)],
          f"{len(a_head)} header lines but {command}")
    a_cmd = [i for i, x in enumerate(a_head) if x.startswith(command)]
    b_cmd = [i for i, x in enumerate(b_head) if x.startswith(command)]
    check(len(a_cmd) == 1 and a_cmd == b_cmd and b_path in b_head[b_cmd[0]]
          and b_head[b_cmd[0]].replace(b_path, a_path) == a_head[a_cmd[0]],
          f"{command}: the same line but for --out {b_path}")

    with pysam.TabixFile(str(score / f"{whole}.vcf.gz")) as ta, \
            pysam.TabixFile(str(score / f"{scattered}.vcf.gz")) as tb:
        same = ta.contigs == tb.contigs and all(list(ta.fetch(c)) == list(tb.fetch(c)) for c in ta.contigs)
    check(same, f"{scattered}.vcf.gz.tbi: every contig fetched through the index")

    sa = json.loads((score / f"{whole}.summary.json").read_text())
    sb = json.loads((score / f"{scattered}.summary.json").read_text())
    check(all(sa[k] == sb[k] for k in COUNTS), f"summary.json: {', '.join(COUNTS)}")
    check({**sb["settings"], "out": sa["settings"]["out"]} == sa["settings"], "summary.json: settings but out")
    pa, pb = dict(sa["provenance"]), dict(sb["provenance"])
    check(pb.pop("command").replace(b_path, a_path) == pa.pop("command") and pa == pb,
          "summary.json: provenance (the command but for --out)")
    spans = [tuple(p["records"]) for p in sb.get("gathered", [])]
    check(len(spans) >= 3 and all(a < b for a, b in spans) and spans[-1][1] == sa["records"],
          f"gathered from {len(spans)} parts, none empty: records {spans}")
    check((score / f"{scattered}.scores.png").is_file(), f"{scattered}.scores.png exists")
    left = sorted(p.name for p in score.glob(f"{scattered}.part-*"))
    check(not left, f"temporary parts removed ({', '.join(left) or 'none left'})")
    print(f"compare_scatter: {scattered} (gathered parts) vs {whole} (one job): "
          f"{'the same' if not bad else f'{len(bad)} checks differ'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
