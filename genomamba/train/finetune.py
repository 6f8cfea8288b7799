"""Fine-tuning a pretrained masked-LM checkpoint for sequence classification.

``run_finetune(settings)`` reads the train/val[/test] sets (``genomamba.train.tasks``),
builds ``GenoMambaForSequenceClassification`` on the pretrained backbone and trains

- ``mode="probe"``: a linear probe on frozen features. The pooled features (averaged over
  both strands) are computed once; only the linear layer is trained, on those;
- ``mode="full"``: every weight. Models without RC parameter sharing see each training
  sequence on a random strand.

Predictions are RC-invariant in every mode: "ps" models are by construction, others are
saved with ``rc_average`` on (both strands' logits averaged at inference). Training keeps
the weights of the epoch with the best validation metric and stops after ``patience``
epochs without improvement. Everything random is drawn from ``seed``.

Writes into ``out``: ``model/`` (``save_pretrained`` plus ``labels.json``), ``metrics.json``,
``predictions.tsv`` and ``scores.png`` (see ``genomamba.train.finetune_report``).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from genomamba import settings
from genomamba.data import PAD
from genomamba.data.progress import Progress
from genomamba.data.reference import open_reference
from genomamba.device import autocast, resolve_device
from genomamba.errors import GenomambaError
from genomamba.model.model import POOLINGS
from genomamba.model.pooling import LEARNED as LEARNED_POOLINGS
from genomamba.train.finetune_defaults import DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_PATIENCE, DEFAULTS, METRICS, MODES
from genomamba.train.finetune_metrics import classification_metrics
from genomamba.train.tasks import class_names, label_ids, load_examples


@dataclass
class FinetuneSettings:
    model: str
    train: str
    val: str
    out: str
    test: str | None = None
    genome: str | None = None
    mode: str = DEFAULTS["mode"]
    pooling: str = DEFAULTS["pooling"]
    epochs: int | None = DEFAULTS["epochs"]
    batch_size: int = DEFAULTS["batch_size"]
    lr: float | None = DEFAULTS["lr"]
    weight_decay: float = DEFAULTS["weight_decay"]
    patience: int | None = DEFAULTS["patience"]
    metric: str = DEFAULTS["metric"]
    seed: int = DEFAULTS["seed"]
    device: str = DEFAULTS["device"]
    baselines: tuple = tuple(DEFAULTS["baselines"])  # genomamba.train.baselines.BASELINES

    def check(self):
        from genomamba.train.baselines import BASELINES

        if isinstance(self.baselines, str):
            self.baselines = [b.strip() for b in self.baselines.split(",") if b.strip()]
        self.baselines = tuple(self.baselines or ())
        bad = [b for b in self.baselines if b not in BASELINES]
        if bad:
            raise GenomambaError(f"baselines takes a subset of {', '.join(BASELINES)}, got {list(self.baselines)!r}")
        if self.mode not in MODES:
            raise GenomambaError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.metric not in METRICS:
            raise GenomambaError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.pooling not in POOLINGS:
            raise GenomambaError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.mode == "probe" and self.pooling in LEARNED_POOLINGS:
            raise GenomambaError(f"pooling {self.pooling} has weights to learn: use mode=full (a probe trains only "
                                 "the linear layer)")
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) is not None:
                settings.check_number(name, getattr(self, name), integer=True, minimum=1)
        if self.lr is not None:
            settings.check_number("lr", self.lr, positive=True)


def batches(lengths, batch_size: int, rng: np.random.Generator | None):
    """Index batches; sequences of similar length go together (less padding).

    With ``rng``: shuffled, then sorted by length within pools of 50 batches, and the
    batches shuffled. Without: in order of length (for prediction)."""
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    order = rng.permutation(len(lengths))
    pool = 50 * batch_size
    out = []
    for p in range(0, len(order), pool):
        chunk = order[p : p + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(out)
    return out


def collate(sequences, index, device) -> torch.Tensor:
    """Token arrays -> (batch, max length) long tensor, right-padded with [PAD]."""
    width = max(len(sequences[i]) for i in index)
    out = np.full((len(index), width), PAD, dtype=np.int64)
    for row, i in enumerate(index):
        out[row, : len(sequences[i])] = sequences[i]
    return torch.from_numpy(out).to(device)


def random_strand(ids: torch.Tensor, generator: torch.Generator, complement: torch.Tensor) -> torch.Tensor:
    """Reverse-complement a random half of the rows (their [PAD]s move to the left)."""
    flip = torch.rand(ids.shape[0], generator=generator) < 0.5
    if flip.any():
        ids = ids.clone()
        ids[flip.to(ids.device)] = complement[ids[flip.to(ids.device)].flip(-1)]
    return ids


@torch.no_grad()
def pooled_features(clf, sequences, batch_size, device, desc="features") -> torch.Tensor:
    """Strand-averaged pooled features (n, d_model) of a frozen classifier backbone:
    ``clf.score`` of these equals ``clf`` in eval mode with RC averaging."""
    clf.eval()
    feats = torch.zeros(len(sequences), clf.score.in_features)
    for index in Progress(batches([len(s) for s in sequences], batch_size, None), desc=desc, unit="batch", leave=False):
        ids = collate(sequences, index, device)
        with autocast(device):
            hidden, ran = clf.backbone.strands(ids, both=True)
            pooled = clf.pool(hidden, ran).float()
        feats[torch.as_tensor(index)] = pooled.view(2, len(index), -1).mean(0).cpu()
    return feats


@torch.no_grad()
def predict_probs(clf, sequences, batch_size, device, desc="predict") -> np.ndarray:
    clf.eval()
    probs = np.zeros((len(sequences), clf.num_labels), dtype=np.float64)
    for index in Progress(batches([len(s) for s in sequences], batch_size, None), desc=desc, unit="batch", leave=False):
        with autocast(device):
            logits = clf(collate(sequences, index, device), rc_average=True)
        probs[index] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    return probs


def _score(metrics: dict, name: str) -> float:
    value = metrics.get(name)
    return -math.inf if value is None else value


class EarlyStopping:
    def __init__(self, patience: int, metric: str):
        self.patience, self.metric = patience, metric
        self.best, self.best_epoch, self.best_state, self.bad = -math.inf, 0, None, 0

    def update(self, epoch: int, metrics: dict, state: dict) -> bool:
        """Record an epoch; returns True when training should stop."""
        value = _score(metrics, self.metric)
        if value > self.best or self.best_state is None:
            self.best, self.best_epoch, self.bad = value, epoch, 0
            self.best_state = copy.deepcopy(state)
        else:
            self.bad += 1
        return self.bad >= self.patience


def train_probe(clf, data, s: FinetuneSettings, device, history):
    """Linear probe on precomputed strand-averaged features (stored in ``data[split][2]``,
    for prediction). The probe is fitted on standardised features, then the standardisation
    is folded into ``clf.score``, so the saved model needs nothing else. Returns the stopper."""
    for k in data:
        feats = pooled_features(clf, data[k][0].sequences, s.batch_size, device, desc=f"{k} features")
        data[k] = (*data[k][:2], feats)
    train_x = data["train"][2]
    mean, sd = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    x = {k: (v[2] - mean) / sd for k, v in data.items()}
    y = torch.as_tensor(data["train"][1])
    head = torch.nn.Linear(train_x.shape[1], clf.num_labels)
    opt = torch.optim.AdamW(head.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    rng = np.random.default_rng(s.seed)
    stop = EarlyStopping(s.patience, s.metric)
    for epoch in range(1, s.epochs + 1):
        head.train()
        losses = []
        for index in batches(np.zeros(len(y)), s.batch_size, rng):
            idx = torch.as_tensor(index)
            loss = F.cross_entropy(head(x["train"][idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            val_probs = torch.softmax(head(x["val"]), -1).numpy()
        val = classification_metrics(data["val"][1], val_probs)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val": val})
        if stop.update(epoch, val, head.state_dict()):
            break
    head.load_state_dict(stop.best_state)
    with torch.no_grad():  # score(f) = W (f - mean) / sd + b
        weight = head.weight / sd
        clf.score.weight.copy_(weight.to(clf.score.weight))
        clf.score.bias.copy_((head.bias - weight @ mean).to(clf.score.bias))
    return stop


def train_full(clf, data, s: FinetuneSettings, device, history):
    sequences, y = data["train"][0].sequences, torch.as_tensor(data["train"][1])
    opt = torch.optim.AdamW(clf.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    rng = np.random.default_rng(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    complement = clf.backbone.complement
    augment = clf.config.rc_mode != "ps"
    stop = EarlyStopping(s.patience, s.metric)
    for epoch in range(1, s.epochs + 1):
        clf.train()
        losses = []
        bar = Progress(batches([len(q) for q in sequences], s.batch_size, rng), desc=f"epoch {epoch}", unit="batch",
                       leave=False)
        for index in bar:
            ids = collate(sequences, index, device)
            if augment:
                ids = random_strand(ids, gen, complement)
            with autocast(device):
                logits = clf(ids)
            loss = F.cross_entropy(logits.float(), y[torch.as_tensor(index)].to(device))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(clf.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        val_probs = predict_probs(clf, data["val"][0].sequences, s.batch_size, device, desc="val")
        val = classification_metrics(data["val"][1], val_probs)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val": val})
        bar.close()
        bar.write(f"epoch {epoch}: train loss {history[-1]['train_loss']:.4f}, val {s.metric} {val[s.metric]}")
        if stop.update(epoch, val, clf.state_dict()):
            break
    clf.load_state_dict(stop.best_state)
    return stop


def run_baselines(s: FinetuneSettings, data, n_classes: int) -> dict:
    """The ``s.baselines`` fitted on the same splits (``genomamba.train.baselines``)."""
    import sys

    from genomamba.train.baselines import fit_baselines

    out = fit_baselines(s.baselines, {k: v[0].sequences for k, v in data.items()}, {k: v[1] for k, v in data.items()},
                        n_classes, s.metric)
    held_out = "test" if "test" in data else "val"
    for name, result in out.items():
        if "skipped" in result:
            print(f"finetune: baseline {name} skipped: {result['skipped']}", file=sys.stderr)
            continue
        line = ", ".join(f"{m} {result[held_out][m]:.3f}" for m in ("accuracy", "auroc") if result[held_out][m] is not None)
        print(f"finetune: baseline {name} ({result['features']}): {held_out} {line}", file=sys.stderr)
    return out


def run_finetune(s: FinetuneSettings) -> dict:
    from genomamba.model import GenoMambaForSequenceClassification
    from genomamba.train.finetune_report import write_outputs

    s.check()
    s.lr = DEFAULT_LR[s.mode] if s.lr is None else s.lr
    s.epochs = DEFAULT_EPOCHS[s.mode] if s.epochs is None else s.epochs
    s.patience = DEFAULT_PATIENCE[s.mode] if s.patience is None else s.patience
    started = time.time()
    genome = None
    if s.genome is not None:
        genome = open_reference(s.genome)
    splits = {"train": s.train, "val": s.val, "test": s.test}
    raw = {k: load_examples(p, genome) for k, p in splits.items() if p}
    classes = class_names(raw["train"].labels)
    if len(classes) < 2:
        raise GenomambaError(f"{s.train}: need at least two classes, found {classes}")
    data = {k: (ex, label_ids(ex, classes, splits[k])) for k, ex in raw.items()}

    torch.manual_seed(s.seed)
    device = resolve_device(s.device)
    clf = GenoMambaForSequenceClassification.from_pretrained(
        s.model, num_labels=len(classes), pooling=s.pooling, rc_average=True
    ).to(device)
    if s.mode == "probe":
        for p in clf.backbone.parameters():
            p.requires_grad_(False)
    history: list[dict] = []
    stop = (train_probe if s.mode == "probe" else train_full)(clf, data, s, device, history)

    results = {}
    for split, (ex, labels, *feats) in data.items():
        if feats:  # probe: the frozen features give the same logits as the model
            with torch.no_grad():
                logits = F.linear(feats[0].double(), clf.score.weight.double().cpu(), clf.score.bias.double().cpu())
                probs = torch.softmax(logits, -1).numpy()
        else:
            probs = predict_probs(clf, ex.sequences, s.batch_size, device, desc=split)
        results[split] = (ex, labels, probs)
    metrics = {
        "task": {"classes": classes, **{f"n_{k}": len(v[0]) for k, v in data.items()}},
        "settings": asdict(s),
        "best_epoch": stop.best_epoch,
        "epochs_run": len(history),
        **{split: classification_metrics(labels, probs) for split, (_, labels, probs) in results.items()},
        "history": history,
        "seconds": round(time.time() - started, 2),
    }
    if s.baselines:
        metrics["baselines"] = run_baselines(s, data, len(classes))
    write_outputs(s.out, clf, classes, metrics, results)
    return metrics
