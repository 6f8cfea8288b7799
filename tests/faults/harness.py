"""Kill a real ``python -m genomamba`` run at a chosen moment, look at what it left, rerun.

A ``Case`` is one command on small inputs in its own work directory: the argv, the folders
to watch, which files are its final outputs (what Snakemake or a user takes as finished),
which intermediate files it may leave (checkpoints, parts) and how to check them.

``run_chain(case, k, seed)``:

1. runs the command once uninterrupted, polling the watched folders every few
   milliseconds, which gives the reference outputs and a timeline (when each file,
   temporary or final, appeared); the outputs are then removed (the inputs stay);
2. draws ``k`` kill moments from that timeline (seeded): start-up (before the first file
   appears), mid-work (a time after that, or the appearance of an intermediate file) and the
   final write/rename (the appearance of a final output's temporary or of the output itself);
3. chains trials: each trial is the rerun after the previous kill and is killed (SIGKILL to
   its process group) at its own moment; after every kill it checks (b) that every final
   output present is complete (equal to the reference; directories written as a unit hold
   exactly the reference's files) and every other file left is a valid intermediate or a
   hidden temporary, and (c) that the inputs, the earlier outputs and every file complete
   before the trial are untouched; the last trial runs to completion and (a) its outputs
   must equal the reference's, byte for byte (JSON files: up to the keys that are timings).
   A trial that finishes before its kill moment counts as a completed run (compared the same
   way), its outputs are removed so that the next trial starts afresh, and the kill is tried
   again, aimed earlier. Hidden leftovers are never removed: every rerun runs beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

POLL_S = 0.003
TIMEOUT_S = 120
# keys of summary/metrics JSON whose values are timings (or, after a resume, this run's share)
TIMING_KEYS = {"seconds", "alleles_per_second", "records_per_second", "alleles_scored_per_second",
               "wall_s_this_run", "tokens_per_s", "elapsed_s", "steps_this_run"}
_TMP_NAME = re.compile(r"\.[A-Za-z0-9_]{8}(\.tmp|\.tsv)(?=\.|$)|-[A-Za-z0-9_]{8}(\.tsv)$|\.old-[0-9a-f]{8}$")


def hidden(rel: str) -> bool:
    """A hidden temporary (``.NAME.XXXXXXXX.tmp`` and the like) or something inside one."""
    return any(part.startswith(".") for part in rel.split("/"))


def normalise(rel: str) -> str:
    """A path with the random part of temporary names replaced by ``*``."""
    def star(m):
        if m.group(0).startswith(".old-"):
            return ".old-*"
        return (".*" + m.group(1)) if m.group(1) else ("-*" + m.group(2))
    return "/".join(_TMP_NAME.sub(star, p) for p in rel.split("/"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def strip_timings(value):
    if isinstance(value, dict):
        return {k: strip_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [strip_timings(v) for v in value]
    return value


def json_lines(text: str) -> list:
    return [strip_timings(json.loads(line)) for line in text.splitlines() if line.strip()]


@dataclass
class Case:
    name: str
    workdir: Path
    argv: list[str]
    watch: list[str]  # folders (relative to workdir) whose files are checked
    finals: list[str]  # final outputs: files, or folders whose every file is final
    units: list[str] = field(default_factory=list)  # folders written as a whole (atomic_dir)
    # regex of a relative path -> check(path, reference) returning an error or None
    intermediates: dict[str, Callable] = field(default_factory=dict)
    json_files: list[str] = field(default_factory=list)  # finals compared up to TIMING_KEYS
    may_vanish: list[str] = field(default_factory=list)  # regexes: files a run may remove
    growing: list[str] = field(default_factory=list)  # regexes: logs a run appends to
    # extra comparison of a completed run with the reference: (workdir, reference) -> errors
    compare_extra: Callable | None = None


@dataclass
class Trial:
    kind: str  # startup, mid, final, complete
    trigger: str
    killed: bool
    seconds: float
    errors: list[str]


@dataclass
class ChainResult:
    name: str
    kills: int = 0
    survived: int = 0
    completed: int = 0
    identical: int = 0
    phases: dict = field(default_factory=dict)
    trials: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    reference_s: float = 0.0
    wall_s: float = 0.0
    leftovers: int = 0
    leftover_bytes: int = 0

    def row(self) -> dict:
        return {"command": self.name, "kills": self.kills, "survived": self.survived,
                "identical": f"{self.identical}/{self.completed}", "phases": self.phases,
                "completed_runs": self.completed, "reference_s": round(self.reference_s, 2),
                "wall_s": round(self.wall_s, 1), "hidden_leftovers": self.leftovers,
                "hidden_leftover_bytes": self.leftover_bytes, "errors": self.errors[:20],
                "trials": [f"{t.kind}: {t.trigger}: {'killed' if t.killed else 'ran to the end'} "
                           f"after {t.seconds:.2f} s" for t in self.trials]}


# ---- looking at the folders ----------------------------------------------------------------

def listing(case: Case, tops: list[str] | None = None) -> set[str]:
    """Every file and folder under the watched folders (or ``tops``), relative to the work
    directory."""
    found = set()
    for top in tops or case.watch:
        stack = [case.workdir / top]
        while stack:
            d = stack.pop()
            try:
                entries = list(os.scandir(d))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for e in entries:
                rel = os.path.relpath(e.path, case.workdir)
                if e.is_dir(follow_symlinks=False):
                    found.add(rel + "/")
                    stack.append(Path(e.path))
                else:
                    found.add(rel)
    return found


def files_of(case: Case) -> dict[str, str]:
    """{relative path: sha256} of every non-hidden file under the watched folders."""
    return {rel: digest(case.workdir / rel) for rel in listing(case)
            if not rel.endswith("/") and not hidden(rel)}


def is_final(case: Case, rel: str) -> bool:
    return any(rel == f or rel.startswith(f.rstrip("/") + "/") for f in case.finals)


# ---- one run --------------------------------------------------------------------------------

def launch(case: Case, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    with open(log, "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "genomamba", *case.argv], cwd=case.workdir,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                env=env, start_new_session=True)


def run_once(case: Case, log: Path, at: float | None = None, pattern: str | None = None,
             delay: float = 0.0, timeline: list | None = None, quiet: float = 0.0) -> tuple[int, float]:
    """Run the command; SIGKILL its process group ``at`` seconds after the start, or ``delay``
    seconds after a path matching the regex ``pattern`` (normalised) first appears. With
    ``timeline``, record (seconds, path) of every path's first appearance. ``quiet``: seconds
    at the start not to poll (start-up, before anything can appear). Returns (return code,
    seconds)."""
    # poll only what is needed: the folder of the pattern (every folder for a timeline)
    tops = case.watch if timeline is not None or pattern is None else [pattern.split("/", 1)[0]]
    seen = listing(case, tops)  # only what appears after the start counts
    rx = re.compile(pattern) if pattern else None
    fire = at
    proc = launch(case, log)
    t0 = time.monotonic()
    while True:
        now = time.monotonic() - t0
        if rx is None and timeline is None:  # a kill at a time, or none: nothing to watch
            try:
                proc.wait(timeout=None if fire is None else max(0.0, fire - now))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            break
        if now < quiet:
            try:
                proc.wait(timeout=quiet - now)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is not None:
            break
        if fire is not None and now >= fire:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        names = listing(case, tops)
        if timeline is not None:
            for rel in sorted(names - seen):
                timeline.append((now, normalise(rel)))
        if rx is not None and fire is None and any(rx.fullmatch(normalise(r)) for r in names - seen):
            fire = now + delay
        seen |= names
        if now > TIMEOUT_S:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"{case.name}: no exit after {TIMEOUT_S} s")
        time.sleep(POLL_S)
    return proc.returncode, time.monotonic() - t0


# ---- checks ------------------------------------------------------------------------------

def opens(path: Path) -> str | None:
    """Whether a finished output reads with its format's library (checked on the uninterrupted
    run's outputs, so that a file byte-equal to one of them is valid too)."""
    name = path.name
    try:
        if name.endswith(".h5"):
            import h5py

            with h5py.File(path, "r") as f:
                f.visit(lambda key: f[key][()] if isinstance(f[key], h5py.Dataset) else None)
        elif name.endswith(".safetensors"):
            from safetensors.numpy import load_file

            load_file(str(path))
        elif name.endswith((".bw", ".bigwig")):
            import pyBigWig

            with pyBigWig.open(str(path)) as bw:
                for contig, length in bw.chroms().items():
                    bw.values(contig, 0, length)
        elif name.endswith(".vcf.gz"):
            import pysam

            with pysam.VariantFile(str(path)) as vf:
                records = sum(1 for _ in vf)
                contigs = list(vf.header.contigs)
            with pysam.TabixFile(str(path)) as tbx:
                assert sum(1 for c in contigs if c in tbx.contigs for _ in tbx.fetch(c)) == records
        elif name.endswith(".tsv.gz"):
            import pysam

            with pysam.TabixFile(str(path)) as tbx:
                for contig in tbx.contigs:
                    sum(1 for _ in tbx.fetch(contig))
        elif name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
        return f"{path}: does not read as {name.rsplit('.', 1)[-1]}: {exc!r}"
    return None


def same_as_reference(case: Case, rel: str, ref: dict[str, bytes]) -> str | None:
    data = (case.workdir / rel).read_bytes()
    if data == ref[rel]:
        return None
    if rel in case.json_files:
        try:
            if strip_timings(json.loads(data)) == strip_timings(json.loads(ref[rel])):
                return None
        except ValueError:
            return f"{rel}: not JSON ({len(data)} bytes)"
    return f"{rel}: differs from the uninterrupted run ({len(data)} vs {len(ref[rel])} bytes)"


def check_state(case: Case, ref: dict[str, bytes], earlier: dict[str, str], before: dict[str, str]) -> list[str]:
    """(b) and (c) after a kill; ``before``: the non-hidden files (and hashes) before the trial."""
    errors = []
    now = files_of(case)
    for rel, sha in earlier.items():  # (c) inputs and earlier outputs
        if now.get(rel) != sha:
            errors.append(f"{rel}: earlier file {'changed' if rel in now else 'removed'}")
    for rel in sorted(set(now) - set(earlier)):  # (b) nothing half-written looks finished
        if rel in ref and is_final(case, rel):
            error = same_as_reference(case, rel, ref)
        else:
            check = next((fn for rx, fn in case.intermediates.items() if re.fullmatch(rx, rel)), None)
            error = f"{rel}: unexpected file" if check is None else check(case.workdir / rel, ref)
        if error:
            errors.append(error)
    for unit in case.units:  # a folder written as a whole holds all of its files or is absent
        if (case.workdir / unit).is_dir():
            want = {r for r in ref if r.startswith(unit + "/")}
            have = {r for r in now if r.startswith(unit + "/")}
            if have != want:
                errors.append(f"{unit}/: incomplete: {sorted(want - have)} missing, {sorted(have - want)} extra")
    for rel, sha in before.items():  # (c) what was complete before this trial stays so
        if rel in earlier:
            continue
        vanished = any(re.fullmatch(rx, rel) for rx in case.may_vanish)
        if rel not in now:
            if is_final(case, rel) and not vanished:
                errors.append(f"{rel}: complete before the trial, gone after the kill")
        elif now[rel] != sha and not any(re.fullmatch(rx, rel) for rx in case.growing):
            if not (rel in ref and is_final(case, rel) and same_as_reference(case, rel, ref) is None):
                errors.append(f"{rel}: complete before the trial, changed by the killed run")
    return errors


def check_complete(case: Case, ref: dict[str, bytes], earlier: dict[str, str]) -> list[str]:
    """(a) a run that finished: every final output as in the uninterrupted run."""
    errors = check_state(case, ref, earlier, {})
    now = files_of(case)
    for rel in ref:
        if is_final(case, rel) and rel not in now:
            errors.append(f"{rel}: missing after a completed run")
    if case.compare_extra is not None:
        errors += case.compare_extra(case.workdir, ref)
    return errors


def remove_outputs(case: Case, earlier: dict[str, str]) -> None:
    """Remove everything the command wrote but hidden leftovers (a rerun from scratch)."""
    for rel in sorted(listing(case), key=len, reverse=True):
        if hidden(rel) or rel.rstrip("/") in earlier:
            continue
        path = case.workdir / rel
        if rel.endswith("/"):
            if not any(path.iterdir()) and not any(e.startswith(rel) for e in earlier):
                path.rmdir()
        else:
            path.unlink()


# ---- kill moments -------------------------------------------------------------------------

#: A chain gives up after MAX_TRIALS_PER_KILL x k + 10 trials. Trials that end before their
#: kill moment are no failure (they are checked as completed runs), but a loaded machine makes
#: them common: a CI run once gave up after 20 trials with 5 of 10 tokenize kills (0.5 s runs).
MAX_TRIALS_PER_KILL = 3
MISSES_BEFORE_TIME = 3


def target(pattern: str) -> str:
    """What a temporary's pattern is the temporary of (``in/.x.*.tmp`` -> ``in/x``): a file
    beside the inputs that is there already (a FASTA index) is not written again."""
    folder, name = os.path.split(pattern)
    m = re.fullmatch(r"\.(.+)\.\*\.tmp", name)
    return os.path.join(folder, m.group(1)) if m else pattern


@dataclass
class Kill:
    """One planned kill: ``at`` seconds after the start, or ``delay`` seconds after the first of
    ``patterns`` (normalised paths) not present at the start appears; ``fallback``: the time
    to use when every pattern is present already."""
    kind: str
    at: float | None = None
    patterns: list = field(default_factory=list)
    delay: float = 0.0
    fallback: float | None = None
    chosen: str | None = None
    misses: int = 0

    def arm(self, present: set[str]) -> tuple[str, float | None, str | None, float, str]:
        """(kind, at, regex, delay, label) for a trial starting with the (non-hidden, normalised)
        paths ``present``: a pattern of a file there already would not appear. (Temporaries
        get new names in every run, so they always can.)"""
        self.chosen = next((p for p in self.patterns if p not in present and not (
            target(p).startswith("in/") and target(p) in present)), None)
        if self.chosen is None:
            at = self.at if self.at is not None else self.fallback
            return (self.kind if self.at is not None else "mid"), at, None, 0.0, f"t={at:.2f}s"
        regex = re.escape(self.chosen).replace(r"\*", "[^/]*")
        return self.kind, None, regex, self.delay, f"{self.chosen} +{self.delay * 1000:.0f}ms"

    def missed(self, seconds: float) -> None:
        """The run ended before the kill: aim earlier next time. A file kill that missed
        MISSES_BEFORE_TIME times (files that come and go between two polls of a loaded
        machine) becomes a time kill inside the run that it missed."""
        self.misses += 1
        if self.chosen is not None and self.misses >= MISSES_BEFORE_TIME:
            self.patterns, self.chosen, self.fallback = [], None, 0.7 * seconds
        elif self.chosen is not None:
            self.patterns.remove(self.chosen)
            self.patterns.append(self.chosen)
            self.delay /= 2
        elif self.at is not None:
            self.at = min(self.at, 0.8 * seconds)
        else:
            self.fallback = min(self.fallback, 0.8 * seconds)


def plan_kills(case: Case, timeline: list, duration: float, k: int, rng: random.Random) -> list[Kill]:
    """``k`` kills from the uninterrupted run's timeline: a quarter in start-up (before the
    first file appears), two fifths at the final write/rename (when a final output or its
    temporary appears), the rest mid-work (a time, or when an intermediate file appears)."""
    visible = [(t, p) for t, p in timeline if not p.endswith("/")]
    first = min((t for t, _ in visible), default=duration / 2)

    def final_of(p: str) -> bool:  # a final output, its temporary, or inside a unit's temporary
        for f in case.finals:
            folder, name = os.path.split(f.rstrip("/"))
            tmp = os.path.join(folder, f".{name}.*.tmp") if folder else f".{name}.*.tmp"
            if p == f or p.startswith(f.rstrip("/") + "/") or p == tmp or p.startswith(tmp + "/"):
                return True
        return False

    finals = sorted({p for _, p in visible if final_of(p)})
    middles = sorted({p for t, p in visible if not final_of(p) and t > first})

    def mid_time() -> float:
        return rng.uniform(first, first + 0.75 * (duration - first))  # runs vary in speed

    n_start = max(2, k // 4)
    n_final = max(3, (k * 2) // 5)
    kinds = ["startup"] * n_start + ["final"] * n_final + ["mid"] * (k - n_start - n_final)
    rng.shuffle(kinds)
    plan = []
    for kind in kinds:
        if kind == "startup":
            plan.append(Kill(kind, at=rng.uniform(0.05, max(0.05, first))))
        elif kind == "final" and finals:
            plan.append(Kill(kind, patterns=rng.sample(finals, len(finals)),
                             delay=rng.choice([0.0, rng.uniform(0.0, 0.03)]), fallback=mid_time()))
        elif middles and rng.random() < 0.5:
            plan.append(Kill("mid", patterns=rng.sample(middles, len(middles)), delay=rng.uniform(0.0, 0.05),
                             fallback=mid_time()))
        else:
            plan.append(Kill("mid", at=mid_time()))
    return plan


# ---- the chain ---------------------------------------------------------------------------

def run_chain(case: Case, k: int, seed: int, logs: Path) -> ChainResult:
    started = time.monotonic()
    result = ChainResult(case.name)
    logs.mkdir(parents=True, exist_ok=True)
    earlier = files_of(case)
    timeline: list = []
    rc, duration = run_once(case, logs / "reference.log", timeline=timeline)
    result.reference_s = duration
    if rc != 0:
        result.errors.append(f"uninterrupted run failed ({rc}): {tail(logs / 'reference.log')}")
        return result
    ref = {rel: (case.workdir / rel).read_bytes() for rel in files_of(case) if rel not in earlier}
    result.errors += [e for rel in sorted(ref) if is_final(case, rel) if (e := opens(case.workdir / rel))]
    stray = sorted(r for r in listing(case) if hidden(r))
    if stray:
        result.errors.append(f"the uninterrupted run left hidden files: {stray}")
    remove_outputs(case, earlier)
    rng = random.Random(seed)
    plan = plan_kills(case, timeline, duration, k, rng)
    quiet = 0.5 * min((t for t, p in timeline if not p.endswith("/")), default=0.0)  # half the start-up
    trials = 0
    while plan or result.completed == 0 or result.trials[-1].kind != "complete":
        trials += 1
        if trials > MAX_TRIALS_PER_KILL * k + 10:
            result.errors.append(f"gave up after {trials - 1} trials with {result.kills} kills")
            break
        kill = plan[0] if plan else None
        present = {normalise(r) for r in listing(case) if not hidden(r)}
        kind, at, pattern, delay, label = kill.arm(present) if kill else ("complete", None, None, 0.0, "no kill")
        before = files_of(case)
        log = logs / f"trial-{trials:02d}.log"
        rc, seconds = run_once(case, log, at=at, pattern=pattern, delay=delay, quiet=quiet)
        if rc == -signal.SIGKILL:
            plan.pop(0)
            errors = check_state(case, ref, earlier, before)
            result.kills += 1
            result.survived += not errors
            result.phases[kind] = result.phases.get(kind, 0) + 1
            result.trials.append(Trial(kind, label, True, seconds, errors))
        elif rc == 0:
            errors = check_complete(case, ref, earlier)
            result.completed += 1
            result.identical += not errors
            result.trials.append(Trial("complete", label, False, seconds, errors))
            if kill is not None:  # finished before its kill moment: start the next trial afresh
                kill.missed(seconds)
                remove_outputs(case, earlier)
        else:
            errors = [f"rerun failed with exit code {rc} ({label}): {tail(log)}"]
            result.trials.append(Trial("failed", label, False, seconds, errors))
            if plan:
                plan.pop(0)
        result.errors += [f"trial {trials} ({kind}, {label}): {e}" for e in errors]
        if errors and rc not in (0, -signal.SIGKILL):
            break
    left = [r for r in listing(case) if hidden(r) and not r.endswith("/")]
    result.leftovers = len(left)
    result.leftover_bytes = sum((case.workdir / r).stat().st_size for r in left)
    result.wall_s = time.monotonic() - started
    return result


def tail(log: Path, n: int = 600) -> str:
    try:
        return log.read_text(errors="replace")[-n:].replace("\n", " | ")
    except OSError:
        return ""
