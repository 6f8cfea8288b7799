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
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from genomamba.data.reference import open_reference
from genomamba.errors import GenomambaError
from genomamba.files import pyplot, save_figure, write_json
from genomamba.score.variants import SKIP_REASONS, is_symbolic, record_alleles, reference_problem

MAX_LISTED = 5
RESERVOIR = 100_000


@dataclass
class ScoreSettings:
    model: str
    reference: str
    vcf: str
    out: str
    head: str | None = None
    window: int = 1024
    head_window: int | None = None
    scores: tuple = ("llr", "emb")
    batch_size: int | None = None  # None: default_batch_size(window)
    chunk_size: int = 256
    skip_ref_mismatch: bool = False
    device: str = "auto"
    precision: str = "auto"

    def check(self):
        from genomamba.score.engine import SCORES

        if self.window < 1 or (self.head_window is not None and self.head_window < 1):
            raise GenomambaError("--window and --head-window must be at least 1")
        if self.batch_size is None:
            self.batch_size = default_batch_size(self.window)
        if self.batch_size < 1 or self.chunk_size < 1:
            raise GenomambaError("--batch-size and --chunk-size must be at least 1")
        bad = [s for s in self.scores if s not in SCORES]
        if bad or (not self.scores and not self.head):
            raise GenomambaError(f"--scores takes a comma-separated subset of {', '.join(SCORES)}, got {self.scores!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise GenomambaError(f"--precision must be auto, bf16 or fp32, got {self.precision!r}")


def default_batch_size(window: int) -> int:
    """About 64k bases per forward pass: 64 windows of 1k, 4 of 16k, 1 of 131k."""
    return max(1, min(64, 65536 // window))


# --- reading the VCF ----------------------------------------------------------------------


def open_vcf(path):
    import pysam

    if not os.path.exists(path):
        raise GenomambaError(f"{path}: no such VCF")
    try:
        return pysam.VariantFile(path)
    except (ValueError, OSError) as exc:
        raise GenomambaError(f"{path}: cannot read as VCF/BCF ({exc})") from None


def header_line_count(path) -> int:
    """Lines before the first record (for error messages); 0 for BCF."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    n = 0
    try:
        with opener(path, "rb") as fh:
            for line in fh:
                if not line.startswith(b"#"):
                    break
                n += 1
    except (OSError, EOFError):
        return 0
    return n


def records(vf, path, offset: int = 0):
    """Iterate records, turning pysam's parse errors into one-line GenomambaErrors
    (``offset``: header lines, for the line number)."""
    n = 0
    it = iter(vf)
    while True:
        try:
            rec = next(it)
        except StopIteration:
            return
        except (ValueError, OSError) as exc:
            line = f", line {offset + n + 1}" if offset else ""
            raise GenomambaError(f"{path}, record {n + 1}{line}: malformed VCF record ({exc})") from None
        n += 1
        yield rec


def check_pass(path, reference, skip_ref_mismatch: bool):
    """First pass: (record count, the learned header, whether any ALT is symbolic)."""
    vf = open_vcf(path)
    offset = header_line_count(path)
    problems, listed = Counter(), []
    n, symbolic = 0, False
    for n, rec in enumerate(tqdm(records(vf, path, offset), desc="check", unit="rec", mininterval=1), 1):
        symbolic = symbolic or any(is_symbolic(a) for a in rec.alts or ())
        problem = reference_problem(rec, reference)
        if problem:
            problems[problem[0]] += 1
            if len(listed) < MAX_LISTED:
                line = f", line {offset + n}" if offset else ""
                listed.append(f"{problem[1]} (record {n}{line})")
    header = vf.header
    vf.close()
    total = sum(problems.values())
    if total and not skip_ref_mismatch:
        more = f"; and {total - len(listed)} more" if total > len(listed) else ""
        raise GenomambaError(
            f"{path}: {total} record(s) do not match the reference {reference.path}: "
            f"{'; '.join(listed)}{more}. Use --skip-ref-mismatch to flag and skip them"
        )
    return n, header, symbolic


def declare_learned(header, learned, symbolic: bool) -> None:
    """Declare in ``header`` what htslib learned from undeclared uses while reading, and
    INFO/END when there are symbolic alleles (pysam adds END to such records when their
    INFO changes; BCF output needs it declared)."""
    if symbolic and "END" not in header.info:
        header.info.add("END", 1, "Integer", "Stop position of the interval")
    for name in learned.contigs:
        if name not in header.contigs:
            header.contigs.add(name)
    for table_name in ("info", "formats"):
        have, seen = getattr(header, table_name), getattr(learned, table_name)
        for key, meta in seen.items():
            if key not in have:
                have.add(key, meta.number, meta.type, meta.description)
    for key, meta in learned.filters.items():
        if key not in header.filters:
            header.filters.add(key, None, None, meta.description)


# --- summary ----------------------------------------------------------------------------


class Summary:
    def __init__(self, seed: int = 0):
        self.records = self.alleles = self.scored = 0
        self.per_score = Counter()
        self.skipped = Counter()
        self.samples = {"llr": [], "emb": []}
        self.seen = Counter()
        self.rng = np.random.default_rng(seed)

    def add(self, allele, scores) -> None:
        self.alleles += 1
        if allele.skip:
            self.skipped[allele.skip] += 1
            return
        self.scored += 1
        for name in ("llr", "emb", "head"):
            value = getattr(scores, name)
            if value is None:
                continue
            self.per_score[name] += 1
            if name in self.samples:
                self._sample(name, value)

    def _sample(self, name, value) -> None:
        """Reservoir sample of at most RESERVOIR values per score (for the plot)."""
        self.seen[name] += 1
        bucket = self.samples[name]
        if len(bucket) < RESERVOIR:
            bucket.append(value)
        else:
            j = self.rng.integers(self.seen[name])
            if j < RESERVOIR:
                bucket[j] = value

    def as_dict(self, settings, seconds, work) -> dict:
        stats = {}
        for name, values in self.samples.items():
            if values:
                v = np.asarray(values)
                stats[name] = {"sampled": v.size, "mean": v.mean(), "sd": v.std(), "min": v.min(),
                               "median": float(np.median(v)), "max": v.max()}
        return {
            "records": self.records,
            "alleles": self.alleles,
            "alleles_scored": self.scored,
            "scored_by_score": dict(self.per_score),
            "skipped_by_reason": {r: self.skipped[r] for r in SKIP_REASONS if self.skipped[r]},
            "score_stats": stats,
            "forward_rows": asdict(work),
            "seconds": round(seconds, 3),
            "alleles_per_second": round(self.alleles / seconds, 3) if seconds > 0 else None,
            "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()},
        }

    def line(self) -> str:
        scored = ", ".join(f"{k} {v}" for k, v in sorted(self.per_score.items())) or "none"
        skipped = ", ".join(f"{k} {v}" for k, v in self.skipped.most_common()) or "none"
        return (f"score: {self.records} records, {self.alleles} ALT alleles: {self.scored} scored ({scored}); "
                f"{sum(self.skipped.values())} skipped ({skipped})")


def plot_distribution(path, samples) -> None:
    plt = pyplot()
    labels = {"llr": "GM_LLR: log p(ALT) - log p(REF)", "emb": "GM_EMB: embedding cosine distance"}
    present = [k for k in ("llr", "emb") if samples.get(k)]
    fig, axes = plt.subplots(1, max(1, len(present)), figsize=(5 * max(1, len(present)), 3.2), squeeze=False)
    for ax, name in zip(axes[0], present):
        ax.hist(samples[name], bins=50, color="tab:blue" if name == "llr" else "tab:orange")
        ax.set_xlabel(labels[name])
        ax.set_ylabel("alleles")
        ax.set_title(f"n = {len(samples[name])}")
    if not present:
        axes[0][0].text(0.5, 0.5, "no alleles scored", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    save_figure(fig, path)


# --- the run ----------------------------------------------------------------------------


def load_models(s: ScoreSettings, device):
    from genomamba.model import GenoMambaForMaskedLM, GenoMambaForSequenceClassification

    config_path = os.path.join(s.model, "config.json")
    try:
        with open(config_path) as fh:
            task = json.load(fh).get("task")
    except (OSError, json.JSONDecodeError):
        task = None  # from_pretrained reports what is wrong with the directory
    if task not in (None, GenoMambaForMaskedLM.task):
        raise GenomambaError(
            f"{s.model}: a {task} checkpoint; --model needs a masked-LM checkpoint (pretraining output), "
            "a fine-tuned classifier goes to --head")
    model = GenoMambaForMaskedLM.from_pretrained(s.model).to(device).eval()
    head, classes, head_window = None, None, s.head_window
    if s.head:
        from genomamba.model.labels import read_labels

        labels = read_labels(s.head)
        head = GenoMambaForSequenceClassification.from_pretrained(labels["model_dir"]).to(device).eval()
        classes = labels["classes"]
        if len(classes) != head.num_labels:
            raise GenomambaError(f"{s.head}: labels.json lists {len(classes)} classes, the model has {head.num_labels}")
        head_window = head_window or int(labels.get("sequence_length") or s.window)
    return model, head, classes, head_window


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
