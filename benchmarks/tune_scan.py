"""Sweep the Triton scan's launch settings at benchmark shapes.

A config is "WARPS,BLOCK_T,SEG_LEN[,BWD_PER_SM,BWD_BLOCK_T,BWD_LANES_D,FWD_MAXNREG,BWD_MAXNREG]"
(GENOMAMBA_SCAN_TILE): one channel per thread, so BLOCK_D = 32 * WARPS; SEG_LEN 0 picks the
segment length automatically. Further fields: backward programs per SM, backward BLOCK_T,
backward lanes per warp along channels, register caps (see genomamba/ops/scan_triton.py).

    python benchmarks/tune_scan.py [--rows 0,4] [--bc nl|ln] [--configs 1,8,128,0,2,16 ...]
Prints fwd and fwd+bwd median ms per config; the fastest per row last.
"""

import argparse
import os
import sys
import time

import torch
from triton.testing import do_bench

sys.path.insert(0, os.path.dirname(__file__))
from bench_scan import DTYPES, SHAPES, make_inputs  # noqa: E402

from genomamba.ops import selective_scan  # noqa: E402

DEFAULT = ["1,8,128,0,2,16", "1,8,128,0,4,16", "1,8,128,0,4,8", "1,4,128,0,2,16", "1,16,256,0,2,16,200",
           "1,8,128,0,2,16,0,200"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="0,4")
    ap.add_argument("--configs", nargs="*", default=DEFAULT)
    ap.add_argument("--fwd-only", action="store_true")
    ap.add_argument("--bc", choices=["nl", "ln"], default="nl",
                    help="B/C memory layout: (N, L) rows (as the model passes them) or (L, N) rows")
    args = ap.parse_args()
    for i in args.rows.split(","):
        shape = SHAPES[int(i)]
        b, d, length, n, dt = shape
        x = make_inputs(b, d, length, n, DTYPES[dt], "cuda")
        gout = torch.randn(b, d, length, device="cuda", dtype=DTYPES[dt])
        leaves = list(x.values())
        if args.bc == "ln":  # the leaves are (b, L, N); the scan gets their (b, N, L) views
            for k in ("B", "C"):
                leaf = x[k].detach().transpose(-1, -2).contiguous().requires_grad_()
                leaves[list(x).index(k)] = leaf
                x[k] = leaf.transpose(-1, -2)
        best = []
        for cfg in args.configs:
            os.environ["GENOMAMBA_SCAN_TILE"] = cfg
            try:
                t0 = time.perf_counter()
                with torch.no_grad():
                    selective_scan(**x, delta_softplus=True)
                torch.cuda.synchronize()
                c = time.perf_counter() - t0
                f = do_bench(lambda: selective_scan(**x, delta_softplus=True), warmup=20, rep=100,
                             return_mode="median")

                def fb():
                    out = selective_scan(**x, delta_softplus=True)
                    return torch.autograd.grad(out, leaves, gout)
                fbt = float("nan") if args.fwd_only else do_bench(fb, warmup=20, rep=100, return_mode="median")
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                fb()
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated() / 2**30
            except Exception as e:  # a config that does not compile or fit
                print(f"{shape} {cfg}: failed: {type(e).__name__}: {str(e)[:200]}", flush=True)
                continue
            best.append((fbt if not args.fwd_only else f, cfg, f, fbt))
            print(f"{shape} bc={args.bc} {cfg}: fwd {f:.3f} fwd+bwd {fbt:.3f} peak {peak:.2f} GiB compile {c:.1f}s",
                  flush=True)
        best.sort()
        print(f"BEST {shape}: {best[:3]}", flush=True)
        os.environ.pop("GENOMAMBA_SCAN_TILE", None)


if __name__ == "__main__":
    main()
