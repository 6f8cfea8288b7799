"""``genomamba predict``: a fine-tuned classifier's class probabilities for new sequences.

The classifier (``--head``: a ``genomamba finetune --out`` directory or its ``model/``)
runs as ``finetune`` runs it on its own validation and test sets: each sequence as given
(a BED interval exactly, no resizing), its own forward with the pooling it was trained
with, both strands' logits averaged (``rc_average``), bf16 autocast on a GPU unless
``precision=fp32``, softmax. Batches hold sequences of one length, so no sequence is
padded; on a set of equal-length sequences (as the example task's) the probabilities are
those in finetune's ``predictions.tsv``.

Length policy: the classifier was trained on sequences of about ``sequence_length``
bases (labels.json: the median training length). A sequence shorter than
``1 / length_ratio`` or longer than ``length_ratio`` times that is an error naming the
file, record and line (``length_ratio=0``: no check).

Output: TSV ``name [label] predicted p_<class>...`` in input order (``label`` where the
input has one: a BED 4th column or a TSV ``label`` column), plain or ``.gz``, written under
a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import gzip
import sys
from dataclasses import asdict, dataclass

import numpy as np

from genomamba import settings
from genomamba.errors import GenomambaError, where

DEFAULTS = settings.packaged("predict")


@dataclass
class PredictSettings:
    head: str
    out: str
    bed: str | None = None
    genome: str | None = None
    fasta: str | None = None
    tsv: str | None = None
    batch_size: int = DEFAULTS["batch_size"]
    length_ratio: float = DEFAULTS["length_ratio"]
    device: str = DEFAULTS["device"]
    precision: str = DEFAULTS["precision"]

    def check(self):
        settings.check_number("batch_size", self.batch_size, integer=True, minimum=1)
        settings.check_number("length_ratio", self.length_ratio, minimum=0)
        if 0 < self.length_ratio < 1:
            raise GenomambaError(f"length_ratio must be 0 (no check) or at least 1, got {self.length_ratio}")
        if not self.out.endswith((".tsv", ".tsv.gz")):
            raise GenomambaError(f"--out {self.out}: name it .tsv or .tsv.gz")


class LengthCheck:
    """Sequences far from the classifier's training length are errors (module docstring)."""

    def __init__(self, trained: int | None, ratio: float, source: str, head: str):
        self.trained, self.ratio, self.source, self.head = trained, ratio, source, head

    def __call__(self, regions):
        for region in regions:
            n = len(region.tokens)
            if self.ratio and self.trained and not self.trained / self.ratio <= n <= self.trained * self.ratio:
                raise GenomambaError(
                    f"{where(self.source, record=region.name, line=region.line)}: {n} bases, far from the "
                    f"{self.trained} bases {self.head} was trained on (allowed: x1/{self.ratio:g} to "
                    f"x{self.ratio:g}; set length_ratio=0 to predict anyway)")
            yield region


class InOrder:
    """Rows that arrive in any order, written in input order (at most the rows of the
    batches still waiting are held)."""

    def __init__(self, fh):
        self.fh, self.next, self.held = fh, 0, {}

    def put(self, index: int, line: str) -> None:
        self.held[index] = line
        while self.next in self.held:
            self.fh.write(self.held.pop(self.next))
            self.next += 1


def run_predict(s: PredictSettings) -> dict:
    import torch

    from genomamba.data.progress import Progress
    from genomamba.device import autocast, resolve_device
    from genomamba.files import atomic_path
    from genomamba.infer.inputs import length_batches, no_regions, open_inputs
    from genomamba.model.locate import locate_classifier

    s.check()
    found = locate_classifier(s.head)
    classes = [str(c) for c in found.labels["classes"]]
    inputs = open_inputs(s.bed, s.genome, s.fasta, s.tsv)
    device = resolve_device(s.device)
    clf = found.load(device)
    if clf.num_labels != len(classes):
        raise GenomambaError(f"{found.labels['model_dir']}: labels.json lists {len(classes)} classes, "
                             f"the model has {clf.num_labels}")
    check = LengthCheck(found.labels.get("sequence_length"), s.length_ratio, inputs.path, s.head)
    n, has_label = 0, None
    opener = gzip.open if s.out.endswith(".gz") else open
    with atomic_path(s.out) as tmp, opener(tmp, "wt") as fh, \
            Progress(total=inputs.count, desc="predict", unit="seq") as bar, torch.inference_mode():
        rows = InOrder(fh)
        for batch in length_batches(check(inputs.regions()), s.batch_size):
            if has_label is None:  # the columns follow the first batch: label where the input has one
                has_label = any(r.label is not None for _, r in batch)
                fh.write("\t".join(["name", *(["label"] if has_label else []), "predicted",
                                    *[f"p_{c}" for c in classes]]) + "\n")
            ids = torch.from_numpy(np.stack([r.tokens for _, r in batch])).to(device, torch.int64)
            with autocast(device, s.precision):
                logits = clf(ids, rc_average=True)
            probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            for (i, region), p in zip(batch, probs):
                label = [region.label or "."] if has_label else []
                rows.put(i, "\t".join([region.name, *label, classes[int(p.argmax())], *[f"{v:.6g}" for v in p]]) + "\n")
            n += len(batch)
            bar.update(len(batch))
        if n == 0:
            raise no_regions(inputs)
    print(f"predict: {n} sequence(s) -> {s.out} ({', '.join(classes)})", file=sys.stderr)
    return {"sequences": n, "classes": classes, "settings": asdict(s)}
