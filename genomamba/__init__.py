"""genomamba: reverse-complement-equivariant bidirectional Mamba for DNA."""

__version__ = "0.1.0"
