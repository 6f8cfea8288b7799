"""Triton GPU kernels; installed as ``genomamba.kernels``."""
