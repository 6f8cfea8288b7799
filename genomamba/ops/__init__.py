"""The model's compute ops, each with a Triton path, a PyTorch path and a float64 reference.

One naming convention for every op ``X``:

    X.py             the dispatcher users call (picks the backend: ``backend.py``)
    X_triton.py      the Triton wrapper (autograd function, launch settings); imports triton
    X_torch.py       the PyTorch path, where it differs from the reference (the scan's chunked path)
    X_ref.py         the plain reference (run it in float64 in tests); also the CPU path where
                     no faster PyTorch path exists
    kernels/X.py     the ``@triton.jit`` kernels

Ops: ``scan`` (selective scan, mamba-ssm's ``selective_scan_fn`` semantics), ``conv``
(BiMamba's depthwise convolutions + SiLU; the mixer calls ``conv_ref`` off the fused path),
``rmsnorm``, and ``bimamba_triton`` (the whole BiMamba "add" mixer as one autograd function
on the other kernels; its reference is the module code in ``genomamba.model.mixer``).
"""

from genomamba.ops.backend import BACKENDS, interpreting, resolve_backend
from genomamba.ops.rmsnorm import rms_norm
from genomamba.ops.scan import selective_scan, selective_scan_bidirectional
from genomamba.ops.scan_ref import selective_scan_ref

__all__ = ["selective_scan", "selective_scan_bidirectional", "selective_scan_ref", "rms_norm",
           "resolve_backend", "interpreting", "BACKENDS"]
