"""Which implementation of an op runs: ``"triton"`` (GPU kernels, or Triton's CPU
interpreter under ``TRITON_INTERPRET=1``) or ``"torch"`` (plain PyTorch, any device).

Triton is imported only by the ``*_triton`` modules, and only once a Triton backend has
been chosen, so the PyTorch path imports on any OS (pyproject installs Triton on Linux only).
"""

from __future__ import annotations

import importlib.util
import os

BACKENDS = ("auto", "triton", "torch")


def interpreting() -> bool:
    """Triton kernels run in Triton's CPU interpreter (TRITON_INTERPRET=1: tests without a GPU)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def resolve_backend(backend: str, x) -> str:
    """The backend that runs for ``backend`` on x's device ("auto": triton on CUDA, else torch)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "triton" if x.is_cuda and triton_available() else "torch"
    if backend == "triton" and not triton_available():
        raise RuntimeError("backend 'triton' needs the triton package (pip install triton; Linux only)")
    return backend
