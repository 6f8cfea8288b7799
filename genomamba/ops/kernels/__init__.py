"""Triton kernels (``@triton.jit``) of the ops in ``genomamba.ops``: ``scan``, ``conv``, ``rmsnorm``.

Only the ``*_triton`` wrappers import these; nothing here is imported on a CPU-only path."""
