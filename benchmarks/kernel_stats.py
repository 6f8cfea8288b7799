"""Registers, spills and shared memory of every compiled selective-scan kernel.

    python benchmarks/kernel_stats.py [--row 0]
Runs one forward+backward at a benchmark shape, then prints what Triton compiled.
Also the program to profile with Nsight Compute; its backward main pass is
    ncu -k regex:_scan_bwd_kernel --launch-skip 1 --launch-count 1 --set full \
        python benchmarks/kernel_stats.py --row 0
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_scan import DTYPES, SHAPES, make_inputs  # noqa: E402

import genomamba.ops.kernels.scan as kernels  # noqa: E402
from genomamba.ops import selective_scan  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--row", type=int, default=0)
    args = ap.parse_args()
    b, d, length, n, dt = SHAPES[args.row]
    x = make_inputs(b, d, length, n, DTYPES[dt], "cuda")
    out = selective_scan(**x, delta_softplus=True)
    torch.autograd.grad(out, list(x.values()), torch.randn_like(out))
    torch.cuda.synchronize()
    for name in ("_scan_fwd_kernel", "_segment_chain_kernel", "_scan_bwd_kernel"):
        for cache in getattr(kernels, name).device_caches.values():
            for k in cache[0].values():
                k._init_handles()
                ptx = k.asm["ptx"]
                print(f"{name} regs {k.n_regs} spills {k.n_spills} shared {k.metadata.shared} "
                      f"warps {k.metadata.num_warps} ptx lines {len(ptx.splitlines())} "
                      f"shfl {ptx.count('shfl.')} atom {ptx.count('atom.') + ptx.count('red.')}")


if __name__ == "__main__":
    main()
