"""Masked-language-model pretraining: one process, or many under torchrun (DDP).

``run_pretraining(cfg, run_dir)`` trains, validates, checkpoints and exports. Files in
``run_dir`` (written by rank 0 only):

- ``config.yaml``: the resolved settings;
- ``metrics.jsonl``: one JSON object per train log / validation;
- ``checkpoints/step-N.pt``: resumable state (see ``checkpoint.py``);
- ``model/``: the final model (``save_pretrained``), ``loss_curve.png``, ``summary.json``.

The resume policy lives in ``checkpoint.py``, the optimiser in ``optim.py``, the records
in ``metrics.py`` and the windows in ``sampler.py``.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genomamba.data.progress import Progress
from genomamba.device import allow_tf32, autocast
from genomamba.errors import GenomambaError
from genomamba.files import write_text
from genomamba.train import checkpoint as ckpt
from genomamba.train.config import dump
from genomamba.train.distributed import Dist, setup
from genomamba.train.masking import N_STATS, masked_loss, summarize
from genomamba.train.metrics import TrainMetrics
from genomamba.train.optim import build_optimizer
from genomamba.train.sampler import WindowSampler, make_loader, next_batch, sampler_settings


@dataclass
class Result:
    step: int
    finished: bool
    model: torch.nn.Module  # the unwrapped model, on its device
    val: dict | None  # the last validation's metrics


def build_model(cfg: dict):
    from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

    try:
        config = GenoMambaConfig(**cfg["model"])
    except (TypeError, ValueError) as exc:
        raise GenomambaError(f"config: bad model settings ({exc})") from None
    return GenoMambaForMaskedLM(config)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the same initial weights on every rank)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def wrap_model(model: torch.nn.Module, env: Dist, compile: bool) -> torch.nn.Module:
    """The model the training steps call: under DDP with several processes, compiled if asked."""
    wrapped = model
    if env.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped = DDP(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    if compile:
        wrapped = torch.compile(wrapped)
    return wrapped


def logits_of(output):
    if torch.is_tensor(output):
        return output
    return output.logits if hasattr(output, "logits") else output[0]


def rc_augment_on(cfg: dict) -> bool:
    setting = cfg["data"]["rc_augment"]
    if setting == "auto":
        return cfg["model"].get("rc_mode", "ps") != "ps"
    return bool(setting)


def load_data(cfg: dict, rank: int) -> tuple[WindowSampler, list[dict]]:
    """This rank's train sampler and its fixed validation batches (none without a val split)."""
    sources = cfg["data"]["sources"]
    rc = rc_augment_on(cfg)
    settings = sampler_settings(cfg)
    train = WindowSampler(sources, "train", settings, rank, rc_augment=rc)
    if not len(train):
        raise GenomambaError(
            f"{sources[0]['path'] if sources else 'data'}: no train interval of at least "
            f"{min(cfg['data']['min_interval'], cfg['data']['window'])} bases"
        )
    val = WindowSampler(sources, "val", settings, rank, rc_augment=False)
    return train, [val.batch(b) for b in range(cfg["train"]["eval_batches"])] if len(val) else []


class Trainer:
    def __init__(self, cfg: dict, run_dir: Path, env: Dist, resume: str | None):
        self.cfg, self.run_dir, self.env = cfg, Path(run_dir), env
        t = cfg["train"]
        self.accum = t["grad_accum"]
        self.autocast = autocast(env.device, t["precision"])
        allow_tf32(env.device)
        state, self.resumed_from = ckpt.resume_state(self.run_dir, resume, cfg, env)
        seed_everything(t["seed"])
        self.model = build_model(cfg).to(env.device)
        self.optimizer, self.scheduler = build_optimizer(self.model, t, cuda=env.device.type == "cuda")
        self.step = 0
        if state is not None:
            self.step = ckpt.restore(state, self.resumed_from, self.model, self.optimizer,
                                     self.scheduler, env.rank, self.accum)
        self.forward_model = wrap_model(self.model, env, t["compile"])
        self.train_sampler, self.val_batches = load_data(cfg, env.rank)
        tokens_per_step = t["batch_size"] * cfg["data"]["window"] * self.accum * env.world
        self.metrics = TrainMetrics(self.run_dir, env, tokens_per_step)

    # -- pieces --------------------------------------------------------------------
    def micro_step(self, batch: dict, sync: bool) -> torch.Tensor:
        dev = self.env.device
        inputs = batch["input_ids"].to(dev, non_blocking=True)
        labels = batch["labels"].to(dev, non_blocking=True)
        weights = batch["weights"].to(dev, non_blocking=True)
        no_sync = getattr(self.forward_model, "no_sync", None)
        ctx = contextlib.nullcontext() if sync or no_sync is None else no_sync()
        with ctx:
            with self.autocast:
                logits = logits_of(self.forward_model(inputs))
            loss, stats = masked_loss(logits, labels, weights, inputs)
            (loss / self.accum).backward()
        return loss.detach(), stats

    def optimizer_step(self, batches):
        """Accumulate gradients over the micro-batches, clip, check, step. Returns (stats, grad norm)."""
        env, t = self.env, self.cfg["train"]
        step_stats = torch.zeros(N_STATS, dtype=torch.float64, device=env.device)
        loss_sum = torch.zeros((), dtype=torch.float32, device=env.device)
        for micro in range(self.accum):
            loss, stats = self.micro_step(next_batch(batches), sync=micro == self.accum - 1)
            loss_sum += loss
            step_stats += stats
        clip = t["grad_clip"] if t["grad_clip"] and t["grad_clip"] > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        bad = env.sum_(torch.stack([loss_sum, grad_norm.float()]))
        if not torch.isfinite(bad).all():
            self.optimizer.zero_grad(set_to_none=True)
            path = self.save()
            raise GenomambaError(
                f"loss or gradient became {'nan' if bad.isnan().any() else 'inf'} at step "
                f"{self.step + 1}; saved the state after step {self.step} to {path or self.run_dir}"
                " (lower train.lr or raise train.warmup_steps)"
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return step_stats, grad_norm

    @torch.no_grad()
    def evaluate(self) -> dict | None:
        if not self.val_batches:
            return None
        self.model.eval()
        total = torch.zeros(N_STATS, dtype=torch.float64, device=self.env.device)
        for batch in self.val_batches:
            inputs, labels, weights = (torch.from_numpy(batch[k]).to(self.env.device)
                                       for k in ("input_ids", "labels", "weights"))
            with self.autocast:
                logits = logits_of(self.model(inputs))
            _, stats = masked_loss(logits, labels, weights, inputs)
            total += stats
        self.model.train()
        return summarize(self.env.sum_(total).cpu())

    def save(self) -> Path | None:
        state = ckpt.training_state(self.step, self.accum, self.model, self.optimizer,
                                    self.scheduler, self.cfg, self.env)  # collective
        path = None
        if self.env.is_main:
            path = ckpt.save_checkpoint(self.run_dir, state, self.cfg["train"]["keep_checkpoints"])
        self.env.barrier()
        return path

    def export(self) -> None:
        if self.env.is_main:
            # atomic (temp dir, rename); the window is `score`'s default window for this model
            self.model.save_pretrained(self.run_dir / "model", training={"window": self.cfg["data"]["window"]})

    # -- the loop ------------------------------------------------------------------
    def train(self, stop_at: int | None = None) -> Result:
        total = self.cfg["train"]["steps"]
        end = min(total, stop_at) if stop_at is not None else total
        self.open_run()
        data = self.cfg["data"]
        loader = make_loader(self.train_sampler, self.step * self.accum, data["num_workers"],
                             data["prefetch"], pin_memory=self.env.device.type == "cuda")
        batches = iter(loader)
        val, steps_run = self.run_steps(batches, end, total)
        del batches, loader
        finished = self.step >= total
        if steps_run == 0 and finished:  # resumed a finished run: still export and report
            val = self.evaluate()
        if finished:
            self.export()
            self.metrics.write_summary(self.step, data["window"], val, steps_run)
        return Result(step=self.step, finished=finished, model=self.model, val=val)

    def open_run(self) -> None:
        """Write ``config.yaml``; start ``metrics.jsonl`` afresh or cut it back to the resumed step."""
        if self.env.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text(self.run_dir / "config.yaml", dump(self.cfg))
            self.metrics.open(None if self.resumed_from is None else self.step)

    def run_steps(self, batches, end: int, total: int) -> tuple[dict | None, int]:
        """Train up to step ``end``, logging, validating and saving on the way.

        Returns (the last validation's metrics, steps run).
        """
        t = self.cfg["train"]
        steps_run, val = 0, None
        # a bar on a terminal; in a log, the train and validation lines below (no \r redraws)
        with Progress(total=total, initial=self.step, desc="pretrain", unit="step",
                      enabled=self.env.is_main, every=float("inf")) as bar:
            self.metrics.start()
            self.model.train()
            while self.step < end:
                step_stats, grad_norm = self.optimizer_step(batches)
                self.step += 1
                steps_run += 1
                self.metrics.add(step_stats)
                bar.update(1)
                if self.step % t["log_every"] == 0 or self.step == end:
                    self.log_train(bar, grad_norm)
                with self.metrics.paused():  # validation and checkpoints don't count in tokens/s
                    if self.step % t["eval_every"] == 0 or self.step == total:
                        val = self.validate(bar)
                    if self.step % t["checkpoint_every"] == 0 or self.step == end:
                        self.save()
        return val, steps_run

    def log_train(self, bar, grad_norm) -> None:
        record = self.metrics.train_record(self.step, self.scheduler.get_last_lr()[0], grad_norm)
        bar.set_postfix(loss=f"{record['loss']:.4f}", acc=f"{record['acc']:.3f}", lr=f"{record['lr']:.2e}")
        if self.env.is_main and not bar.interactive:
            bar.write(f"step {self.step}/{self.cfg['train']['steps']}: train loss {record['loss']:.4f} "
                      f"acc {record['acc']:.4f} lr {record['lr']:.2e} ({record['tokens_per_s']:,.0f} tokens/s)")

    def validate(self, bar) -> dict | None:
        val = self.evaluate()
        if val is not None:
            self.metrics.val_record(self.step, val)
            if self.env.is_main:
                bar.write(f"step {self.step}: val loss {val['loss']:.4f} acc {val['acc']:.4f}")
        return val


def run_pretraining(cfg: dict, run_dir: str | Path, resume: str | None = None,
                    stop_at: int | None = None, env: Dist | None = None) -> Result:
    """Train with ``cfg`` into ``run_dir``; ``resume`` is a checkpoint path, 'latest' or 'auto'."""
    env = env or setup()
    return Trainer(cfg, Path(run_dir), env, resume).train(stop_at=stop_at)
