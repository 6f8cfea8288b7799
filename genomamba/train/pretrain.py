"""Masked-language-model pretraining: one process, or many under torchrun (DDP).

``run_pretraining(cfg, run_dir)`` trains, validates, checkpoints and exports. Files in
``run_dir`` (written by rank 0 only):

- ``config.yaml``: the resolved settings;
- ``metrics.jsonl``: one JSON object per train log / validation;
- ``checkpoints/step-N.pt``: resumable state (see ``checkpoint.py``);
- ``model/``: the final model (``save_pretrained``), ``loss_curve.png``, ``summary.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genomamba.device import allow_tf32, autocast
from genomamba.errors import GenomambaError
from genomamba.files import write_text
from genomamba.train import checkpoint as ckpt
from genomamba.train.config import dump
from genomamba.train.distributed import Dist, setup
from genomamba.train.masking import N_STATS, masked_loss, summarize
from genomamba.train.metrics import MetricsLog, plot_loss_curve
from genomamba.train.sampler import WindowSampler, make_loader, next_batch


@dataclass
class Result:
    step: int
    finished: bool
    model: torch.nn.Module  # the unwrapped model, on its device
    val: dict | None  # the last validation's metrics


def lr_factor(step: int, cfg: dict) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_lr_ratio`` at ``steps``."""
    t = cfg["train"]
    warmup, total, floor = t["warmup_steps"], t["steps"], t["min_lr_ratio"]
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_model(cfg: dict):
    from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

    try:
        config = GenoMambaConfig(**cfg["model"])
    except (TypeError, ValueError) as exc:
        raise GenomambaError(f"config: bad model settings ({exc})") from None
    return GenoMambaForMaskedLM(config)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: not on norms, biases, embeddings or SSM A/D."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim < 2 or "embed" in name or getattr(p, "_no_weight_decay", False)
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def logits_of(output):
    if torch.is_tensor(output):
        return output
    return output.logits if hasattr(output, "logits") else output[0]


def rc_augment_on(cfg: dict) -> bool:
    setting = cfg["data"]["rc_augment"]
    if setting == "auto":
        return cfg["model"].get("rc_mode", "ps") != "ps"
    return bool(setting)


RUNTIME_KEYS = {"data": ("num_workers", "prefetch")}  # settings that don't change results


def same_run(old: dict, new: dict) -> bool:
    """Whether two configs describe the same run (up to data-loading settings)."""
    def strip(cfg):
        return {sec: {k: v for k, v in vals.items() if k not in RUNTIME_KEYS.get(sec, ())}
                for sec, vals in cfg.items()}
    return strip(old) == strip(new)


def check_compatible(state: dict, cfg: dict, path: Path) -> None:
    old = state["config"]["model"]
    for key in sorted(set(old) | set(cfg["model"])):
        if old.get(key) != cfg["model"].get(key):
            raise GenomambaError(
                f"{path}: model.{key} is {old.get(key)!r} in the checkpoint but "
                f"{cfg['model'].get(key)!r} now; resume with the same model settings"
            )


class Trainer:
    def __init__(self, cfg: dict, run_dir: Path, env: Dist, resume: str | None):
        self.cfg, self.run_dir, self.env = cfg, Path(run_dir), env
        t = cfg["train"]
        self.accum = t["grad_accum"]
        cuda = env.device.type == "cuda"
        self.autocast = autocast(env.device, t["precision"])
        allow_tf32(env.device)

        resume_path = ckpt.find_resume(self.run_dir, resume) if resume else None
        state = ckpt.load_checkpoint(resume_path) if resume_path is not None else None
        if resume == "auto" and state is not None and not same_run(state["config"], cfg):
            if env.is_main:  # other settings now (e.g. a changed Snakemake config): start afresh
                print(f"pretrain: {self.run_dir}: settings changed since the checkpoints; starting afresh",
                      flush=True)
                for _, old in ckpt.list_checkpoints(self.run_dir):
                    old.unlink()
            env.barrier()
            state = resume_path = None
        if resume_path is None and ckpt.list_checkpoints(self.run_dir):
            raise GenomambaError(
                f"{self.run_dir}: has checkpoints of an earlier run; pass --resume to continue it "
                "or choose another --out"
            )
        if state is not None:
            check_compatible(state, cfg, resume_path)

        seed = t["seed"]
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # the same initial weights on every rank
        self.model = build_model(cfg).to(env.device)
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, t["weight_decay"]), lr=t["lr"], betas=tuple(t["betas"]),
            fused=cuda or None,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, cfg)
        )
        self.step = 0
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.step = int(state["step"])
            rngs = state["rng"]
            ckpt.set_rng_state(rngs[env.rank] if env.rank < len(rngs) else rngs[0])
            if state["sampler"]["next_batch"] != self.step * self.accum:
                raise GenomambaError(f"{resume_path}: sampler position does not match its step")
        self.resumed_from = resume_path

        self.forward_model = self.model
        if env.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.forward_model = DDP(self.model, device_ids=[env.device.index] if cuda else None)
        if t["compile"]:
            self.forward_model = torch.compile(self.forward_model)

        sources = cfg["data"]["sources"]
        rc = rc_augment_on(cfg)
        self.train_sampler = WindowSampler(sources, "train", cfg, env.rank, rc_augment=rc)
        if not len(self.train_sampler):
            raise GenomambaError(
                f"{sources[0]['path'] if sources else 'data'}: no train interval of at least "
                f"{min(cfg['data']['min_interval'], cfg['data']['window'])} bases"
            )
        val_sampler = WindowSampler(sources, "val", cfg, env.rank, rc_augment=False)
        self.val_batches = (
            [val_sampler.batch(b) for b in range(t["eval_batches"])] if len(val_sampler) else []
        )
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", enabled=env.is_main)

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

    def state(self) -> dict:
        rngs = self.env.gather_objects(ckpt.rng_state())
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": {"next_batch": self.step * self.accum},
            "config": self.cfg,
            "world_size": self.env.world,
            "rng": rngs,
        }

    def save(self) -> Path | None:
        state = self.state()  # collective: every rank takes part
        path = None
        if self.env.is_main:
            path = ckpt.save_checkpoint(self.run_dir, state, self.cfg["train"]["keep_checkpoints"])
        self.env.barrier()
        return path

    def peak_memory_gb(self) -> float | None:
        if self.env.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.env.device) / 2**30

    def export(self) -> None:
        if self.env.is_main:
            # atomic (temp dir, rename); the window is `score`'s default window for this model
            self.model.save_pretrained(self.run_dir / "model", training={"window": self.cfg["data"]["window"]})

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

    # -- the loop ------------------------------------------------------------------
    def train(self, stop_at: int | None = None) -> Result:
        from tqdm import tqdm

        cfg, env, t = self.cfg, self.env, self.cfg["train"]
        total = t["steps"]
        end = min(total, stop_at) if stop_at is not None else total
        if env.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            text = dump(cfg)
            write_text(self.run_dir / "config.yaml", text)
            if self.resumed_from is None:
                self.metrics.reset()
            else:
                self.metrics.truncate_after(self.step)
        tokens_per_step = t["batch_size"] * cfg["data"]["window"] * self.accum * env.world
        loader = make_loader(self.train_sampler, self.step * self.accum,
                             cfg["data"]["num_workers"], cfg["data"]["prefetch"],
                             pin_memory=env.device.type == "cuda")
        batches = iter(loader)
        with tqdm(total=total, initial=self.step, desc="pretrain", unit="step",
                  disable=not env.is_main, dynamic_ncols=True, mininterval=1.0) as bar:
            interval = torch.zeros(N_STATS, dtype=torch.float64, device=env.device)
            interval_steps, tic, started = 0, time.perf_counter(), time.perf_counter()
            steps_run, val = 0, None
            self.model.train()
            while self.step < end:
                step_stats, grad_norm = self.optimizer_step(batches)
                self.step += 1
                steps_run += 1
                interval += step_stats
                interval_steps += 1
                bar.update(1)

                if self.step % t["log_every"] == 0 or self.step == end:
                    elapsed = time.perf_counter() - tic
                    m = summarize(env.sum_(interval).cpu())
                    record = {
                        "split": "train", "step": self.step, **m,
                        "lr": self.scheduler.get_last_lr()[0], "grad_norm": float(grad_norm),
                        "tokens_per_s": tokens_per_step * interval_steps / max(elapsed, 1e-9),
                        "peak_mem_gb": self.peak_memory_gb(),
                        "elapsed_s": time.perf_counter() - started,
                    }
                    self.metrics.write(record)
                    bar.set_postfix(loss=f"{m['loss']:.4f}", acc=f"{m['acc']:.3f}", lr=f"{record['lr']:.2e}")
                    interval.zero_()
                    interval_steps, tic = 0, time.perf_counter()
                paused = time.perf_counter()  # validation and checkpoints don't count in tokens/s
                if self.step % t["eval_every"] == 0 or self.step == total:
                    val = self.evaluate()
                    if val is not None:
                        self.metrics.write({"split": "val", "step": self.step, **val})
                        if env.is_main:
                            bar.write(f"step {self.step}: val loss {val['loss']:.4f} acc {val['acc']:.4f}")
                if self.step % t["checkpoint_every"] == 0 or self.step == end:
                    self.save()
                tic += time.perf_counter() - paused
        del batches, loader
        finished = self.step >= total
        if steps_run == 0 and finished:  # resumed a finished run: still export and report
            val = self.evaluate()
        if finished:
            self.export()
            if env.is_main:
                self.write_summary(val, time.perf_counter() - started, steps_run)
        return Result(step=self.step, finished=finished, model=self.model, val=val)

    def write_summary(self, val: dict | None, wall: float, steps_run: int) -> None:
        from genomamba.train.metrics import read_metrics

        path = self.run_dir / "metrics.jsonl"
        records = read_metrics(path) if path.exists() else []
        train = [r for r in records if r.get("split") == "train"]
        speeds = [r["tokens_per_s"] for r in train[1:]] or [r["tokens_per_s"] for r in train]
        summary = {
            "steps": self.step,
            "world_size": self.env.world,
            "device": str(torch.cuda.get_device_name(self.env.device)) if self.env.device.type == "cuda" else "cpu",
            "window": self.cfg["data"]["window"],
            "tokens_per_s": float(np.median(speeds)) if speeds else None,
            "peak_mem_gb": self.peak_memory_gb(),
            "wall_s_this_run": wall,
            "steps_this_run": steps_run,
            "final_train": train[-1] if train else None,
            "final_val": val,
        }
        if records:
            plot_loss_curve(path, self.run_dir / "loss_curve.png")
        text = json.dumps(summary, indent=2) + "\n"
        write_text(self.run_dir / "summary.json", text)


def run_pretraining(cfg: dict, run_dir: str | Path, resume: str | None = None,
                    stop_at: int | None = None, env: Dist | None = None) -> Result:
    """Train with ``cfg`` into ``run_dir``; ``resume`` is a checkpoint path, 'latest' or 'auto'."""
    env = env or setup()
    return Trainer(cfg, Path(run_dir), env, resume).train(stop_at=stop_at)
