"""The pretraining optimiser: AdamW with decay on matrices only, warm-up then cosine decay."""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, train: dict) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_lr_ratio`` at ``steps`` (``train``: cfg["train"])."""
    warmup, total, floor = train["warmup_steps"], train["steps"], train["min_lr_ratio"]
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: not on norms, biases, embeddings or SSM A/D."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim < 2 or "embed" in name or getattr(p, "_no_weight_decay", False)
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, train: dict, cuda: bool):
    """AdamW (fused on a GPU) and its LR schedule, from ``train`` (cfg["train"])."""
    optimizer = torch.optim.AdamW(
        param_groups(model, train["weight_decay"]), lr=train["lr"], betas=tuple(train["betas"]),
        fused=cuda or None,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, train))
    return optimizer, scheduler
