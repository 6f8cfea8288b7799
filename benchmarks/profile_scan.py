"""Per-kernel CUDA time of one selective-scan forward+backward (torch.profiler).

    python benchmarks/profile_scan.py [--row 0] [--iters 10]
Prints each kernel's mean time per iteration, so a slow pass of the segment
design (summary, chain, main; forward or backward) shows up by name.
"""

import argparse
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(__file__))
from bench_scan import DTYPES, SHAPES, make_inputs  # noqa: E402

from genomamba.ops import selective_scan  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--row", type=int, default=0)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    b, d, length, n, dt = SHAPES[args.row]
    x = make_inputs(b, d, length, n, DTYPES[dt], "cuda")
    gout = torch.randn(b, d, length, device="cuda", dtype=DTYPES[dt])
    leaves = list(x.values())

    def step():
        out = selective_scan(**x, delta_softplus=True)
        torch.autograd.grad(out, leaves, gout)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(args.iters):
            step()
        torch.cuda.synchronize()
    totals = {}
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            totals[ev.name] = totals.get(ev.name, 0.0) + ev.device_time / 1e3 / args.iters
    print(f"{(b, d, length, n, dt)} tile {os.environ.get('GENOMAMBA_SCAN_TILE', 'auto')}: ms per fwd+bwd")
    for name, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {ms:8.3f}  {name[:90]}")
    print(f"  {sum(totals.values()):8.3f}  total")


if __name__ == "__main__":
    main()
