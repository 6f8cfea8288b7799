"""The peers we compare with, built and imported on the benchmark machine itself.

A ratio against a peer is measured side by side: the same process, the same GPU, the same
inputs. The peers' sources are never part of this repository; ``benchmarks/get_peers.sh``
puts tagged copies in ``.peer/`` (ignored by git), and this module builds their CUDA
extensions there with ``torch.utils.cpp_extension.load`` (ninja; cached in
``.peer/build/``, so a second run reuses them):

- mamba-ssm v2.3.2 (``.peer/mamba``): ``selective_scan_cuda`` from ``csrc/selective_scan``,
  compiled with the nvcc flags of its ``setup.py``, for this GPU's architecture only
  (``setup.py`` also builds sm_75 ... sm_121, which costs minutes and changes nothing here);
- causal-conv1d v1.6.1.post4 (``.peer/causal-conv1d``): ``causal_conv1d_cuda``, likewise;
  Caduceus's Mamba blocks call it;
- Caduceus (``.peer/caduceus``, kuleshov-group/caduceus): its Hugging Face model code.

mamba-ssm's package ``__init__`` imports its language-model generation code, which needs
names that transformers 5 no longer has; the package is therefore registered without running
its ``__init__`` (its modules import as usual). ``GENOMAMBA_PEER_SRC`` or ``--peer-src`` points
elsewhere than ``.peer/``.
"""

from __future__ import annotations

import os
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: nvcc flags of mamba-ssm v2.3.2's and causal-conv1d v1.6.1.post4's setup.py (CUDA build),
#: less the -gencode list, which ``_arch_flags`` replaces by this GPU's architecture
MAMBA_NVCC = ["-O3", "-std=c++17", "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
              "-U__CUDA_NO_BFLOAT16_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
              "-U__CUDA_NO_BFLOAT162_OPERATORS__", "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
              "--expt-relaxed-constexpr", "--expt-extended-lambda", "--use_fast_math", "-lineinfo",
              "--threads", "4"]
CONV_NVCC = [f for f in MAMBA_NVCC if f != "-std=c++17"]
MAMBA_SOURCES = ["selective_scan.cpp"] + [f"selective_scan_fwd_{t}.cu" for t in ("fp32", "fp16", "bf16")] + [
    f"selective_scan_bwd_{t}_{k}.cu" for t in ("fp32", "fp16", "bf16") for k in ("real", "complex")]
CONV_SOURCES = ["causal_conv1d.cpp", "causal_conv1d_fwd.cu", "causal_conv1d_bwd.cu", "causal_conv1d_update.cu"]


def peer_src(path=None) -> Path:
    src = Path(path or os.environ.get("GENOMAMBA_PEER_SRC") or ROOT / ".peer")
    if not (src / "mamba" / "csrc" / "selective_scan").is_dir():
        raise SystemExit(f"{src}: no mamba-ssm sources (mamba/csrc/selective_scan); run benchmarks/get_peers.sh")
    return src


def _arch_flags():
    import torch

    major, minor = torch.cuda.get_device_capability()
    return ["-gencode", f"arch=compute_{major}{minor},code=sm_{major}{minor}"]


def _build(name: str, csrc: Path, sources: list[str], nvcc: list[str], cxx: list[str], src: Path):
    """Compile (or reuse) one extension and register it under its import name."""
    if name in sys.modules:
        return sys.modules[name]
    from torch.utils.cpp_extension import load

    build = src / "build" / name
    build.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 4))
    start = time.perf_counter()
    module = load(name=name, sources=[str(csrc / s) for s in sources], extra_cuda_cflags=nvcc + _arch_flags(),
                  extra_cflags=cxx, extra_include_paths=[str(csrc)], build_directory=str(build), verbose=False)
    sys.modules[name] = module
    print(f"peer: {name} ready in {time.perf_counter() - start:.0f} s ({build})", flush=True)
    return module


def _package(name: str, directory: Path):
    """Register a package by its directory without running its ``__init__``."""
    if name not in sys.modules:
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(directory)]
        sys.modules[name] = pkg


def load_mamba_ssm(path=None, with_conv=False):
    """mamba-ssm's ``selective_scan_fn`` (its CUDA kernel and autograd wrapper). ``with_conv``
    builds causal-conv1d first (its Mamba blocks need it; the scan alone does not, and its
    build takes most of the time: 364 of 501 s on the H200)."""
    src = peer_src(path)
    _build("selective_scan_cuda", src / "mamba" / "csrc" / "selective_scan", MAMBA_SOURCES, MAMBA_NVCC,
           ["-O3", "-std=c++17"], src)
    _package("mamba_ssm", src / "mamba" / "mamba_ssm")
    if with_conv:
        load_causal_conv1d(src)
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    return selective_scan_fn


def load_causal_conv1d(path=None):
    src = peer_src(path)
    _build("causal_conv1d_cuda", src / "causal-conv1d" / "csrc", CONV_SOURCES, CONV_NVCC, ["-O3"], src)
    sys.path.insert(0, str(src / "causal-conv1d"))
    import causal_conv1d

    return causal_conv1d


def load_caduceus(path=None):
    """Caduceus's ``CaduceusConfig`` and ``CaduceusForMaskedLM`` over the built mamba-ssm."""
    src = peer_src(path)
    load_mamba_ssm(src, with_conv=True)
    sys.path.insert(0, str(src / "caduceus"))
    from caduceus import CaduceusConfig, CaduceusForMaskedLM

    # transformers 5 calls tie_weights(recompute_mapping=False); Caduceus's override takes no
    # arguments. Accept and ignore them: what it ties (the RCPS LM head) is unchanged.
    tie = CaduceusForMaskedLM.tie_weights
    if not getattr(tie, "_takes_kwargs", False):
        def tie_weights(self, *args, **kwargs):
            return tie(self)

        tie_weights._takes_kwargs = True
        CaduceusForMaskedLM.tie_weights = tie_weights
    return CaduceusConfig, CaduceusForMaskedLM
