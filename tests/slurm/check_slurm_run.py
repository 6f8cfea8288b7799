#!/usr/bin/env python3
"""Prove that every job of a snakemake run went through the SLURM cluster.

    python tests/slurm/check_slurm_run.py RUNDIR JOBCOMP [--local-run LOCALDIR] [--expect RULE[=N] ...]

RUNDIR is the snakemake working directory of a `--executor slurm` run (with
--slurm-keep-successful-logs), JOBCOMP the cluster's jobcomp/filetxt file.
For every non-local job in the run's main log it checks:
  * snakemake submitted it with sbatch ("Job N has been submitted with SLURM jobid J"),
  * slurmctld recorded SLURM job J as COMPLETED, exit 0, run in RUNDIR (jobcomp file),
  * the job's SLURM log (.snakemake/slurm_logs/rule_<rule>/...) exists and shows the
    rule finishing inside the job,
and that each --expect rule ran at least once (RULE=N: at least N times) this way. With --local-run (the working
directory of a `--cores N` run of the same targets), every job of that run must be in
this run too, as a SLURM job unless this run made it a localrule.
"""
import argparse
import re
import sys
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rundir", type=Path)
    ap.add_argument("jobcomp", type=Path)
    ap.add_argument("--local-run", type=Path)
    ap.add_argument("--expect", nargs="*", default=[])
    a = ap.parse_args()
    rundir = a.rundir.resolve()

    def main_log(d):
        """The newest log of a run that finished (dry runs and failed runs skipped)."""
        logs = sorted((d / ".snakemake" / "log").glob("*.snakemake.log"))
        done = [p for p in logs if re.search(r"steps \(100%\) done|Nothing to be done", p.read_text())]
        if not done:
            sys.exit(f"check: no log of a finished snakemake run under {d}/.snakemake/log")
        return done[-1]

    def jobs(text):
        """rule blocks: "rule NAME:" / "localrule NAME:" ... "jobid: N" -> ({jobid: rule}, {jobid: rule})"""
        remote, local = {}, {}
        for m in re.finditer(r"^(local)?rule (\S+):\n(?:    .*\n)*?    jobid: (\d+)$", text, re.M):
            (local if m.group(1) else remote)[m.group(3)] = m.group(2)
        return remote, local

    log = main_log(rundir)
    text = log.read_text()
    remote, local = jobs(text)
    subs = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(
        r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", text)}

    comp = {}
    if a.jobcomp.exists():
        for line in a.jobcomp.read_text().splitlines():
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if "JobId" in f:
                comp[f["JobId"]] = f

    errors, rows = [], []
    if not remote:
        errors.append(f"no non-local job in {log}")
    order = lambda x: int(subs.get(x[0], ("999999999",))[0])  # in submission order
    for jobid, rule in sorted(remote.items(), key=order):
        if jobid not in subs:
            errors.append(f"job {jobid} ({rule}) was not submitted through sbatch")
            continue
        sid, slog = subs[jobid]
        c = comp.get(sid)
        if c is None:
            errors.append(f"job {jobid} ({rule}): SLURM job {sid} missing from {a.jobcomp}")
        else:
            if c.get("JobState") != "COMPLETED" or c.get("ExitCode") != "0:0":
                errors.append(f"job {jobid} ({rule}): SLURM job {sid} {c.get('JobState')} exit {c.get('ExitCode')}")
            if Path(c.get("WorkDir", "")).resolve() != rundir:
                errors.append(f"job {jobid} ({rule}): SLURM job {sid} ran in {c.get('WorkDir')}, not {rundir}")
        lp = Path(slog)
        if f"/rule_{rule}/" not in slog:
            errors.append(f"job {jobid} ({rule}): SLURM log {slog} is not under rule_{rule}/")
        if not lp.exists():
            errors.append(f"job {jobid} ({rule}): SLURM log {slog} missing (run with --slurm-keep-successful-logs)")
        else:
            lt = lp.read_text(errors="replace")
            if not re.search(rf"^rule {re.escape(rule)}:", lt, re.M) or "1 of 1 steps (100%) done" not in lt:
                errors.append(f"job {jobid} ({rule}): SLURM log {slog} does not show the rule finishing")
        rows.append((rule, jobid, sid, c.get("JobState") if c else "?", c.get("NodeList") if c else "?",
                     c.get("StartTime", "?")[11:] if c else "?", c.get("EndTime", "?")[11:] if c else "?"))
    ran = {r for r in remote.values()}
    if a.local_run:
        from collections import Counter

        lr, ll = jobs(main_log(a.local_run.resolve()).read_text())
        want = Counter(list(lr.values()) + list(ll.values()))
        got = Counter(list(remote.values()) + list(local.values()))
        for rule, n in sorted(want.items()):
            if got[rule] != n:
                errors.append(f"rule {rule}: {n} job(s) in the local run, {got[rule]} in the SLURM run")
        a.expect += sorted(set(want) - set(local.values()))
    for r in a.expect:
        rule, _, n = r.partition("=")
        times = sum(1 for x in remote.values() if x == rule)
        if times < int(n or 1):
            errors.append(f"expected rule {rule} to run as {n or 1} SLURM job(s) or more, it ran as {times} "
                          f"(ran: {sorted(ran) or 'none'})")

    print(f"check: {len(remote)} SLURM jobs, {len(local)} local rules ({', '.join(sorted(set(local.values()))) or '-'})")
    print(f"  {'rule':<22}{'job':>5}{'slurm':>7}  {'state':<10}{'node':<10}{'start':<10}{'end':<10}")
    for r in rows:
        print(f"  {r[0]:<22}{r[1]:>5}{r[2]:>7}  {r[3]:<10}{r[4]:<10}{r[5]:<10}{r[6]:<10}")
    for e in errors:
        print(f"check: ERROR {e}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
