"""Shared pieces of the model tests (imported by tests/test_model_*.py)."""

import pytest
import torch

from genomamba.model import GenoMambaConfig


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread avoids stalls when other jobs share the CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(**kw):
    base = dict(d_model=16, n_layer=2, d_state=8, scan_backend="torch")
    return GenoMambaConfig(**{**base, **kw})


@torch.no_grad()
def perturb(module, seed, scale=0.2):
    """Move every parameter off its (symmetric) initialisation."""
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
