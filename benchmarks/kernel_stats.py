"""Registers, spills, shared memory and occupancy of every compiled selective-scan kernel.

    python benchmarks/kernel_stats.py [--row 0]
    python benchmarks/kernel_stats.py --score 1024,256     # the scoring forward: window, batch
Runs one forward+backward at a benchmark shape (or one inference forward of the default
model over a batch of windows, as scoring runs it), then prints what Triton compiled and the
programs per SM the CUDA driver fits (cuOccupancyMaxActiveBlocksPerMultiprocessor).
Also the program to profile with Nsight Compute; its backward main pass is
    ncu -k regex:_scan_bwd_kernel --launch-skip 1 --launch-count 1 --set full \
        python benchmarks/kernel_stats.py --row 0
"""

import argparse
import ctypes
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
    ap.add_argument("--score", help="WINDOW,BATCH: one inference forward of the default model instead")
    args = ap.parse_args()
    if args.score:
        from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

        window, batch = (int(v) for v in args.score.split(","))
        model = GenoMambaForMaskedLM(GenoMambaConfig()).cuda().eval()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            model(torch.randint(0, 4, (batch, window - 1), device="cuda"))  # the scored span: odd
    else:
        b, d, length, n, dt = SHAPES[args.row]
        x = make_inputs(b, d, length, n, DTYPES[dt], "cuda")
        out = selective_scan(**x, delta_softplus=True)
        torch.autograd.grad(out, list(x.values()), torch.randn_like(out))
    torch.cuda.synchronize()
    libcuda = ctypes.CDLL("libcuda.so.1")
    for name in ("_scan_fwd_kernel", "_segment_chain_kernel", "_scan_bwd_kernel"):
        for cache in getattr(kernels, name).device_caches.values():
            for k in cache[0].values():
                k._init_handles()
                ptx = k.asm["ptx"]
                per_sm = ctypes.c_int(0)
                libcuda.cuOccupancyMaxActiveBlocksPerMultiprocessor(
                    ctypes.byref(per_sm), ctypes.c_void_p(k.function), 32 * k.metadata.num_warps,
                    ctypes.c_size_t(k.metadata.shared))
                print(f"{name} regs {k.n_regs} spills {k.n_spills} shared {k.metadata.shared} "
                      f"warps {k.metadata.num_warps} programs/SM {per_sm.value} ptx lines {len(ptx.splitlines())} "
                      f"shfl {ptx.count('shfl.')} atom {ptx.count('atom.') + ptx.count('red.')}")


if __name__ == "__main__":
    main()
