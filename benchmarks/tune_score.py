"""Scan launch settings for inference: variant-scoring throughput per GENOMAMBA_SCAN_TILE.

The forward's tile (warps per program, time steps per chunk, segment length, register cap)
was tuned for training on the H100 (``tune_scan.py``); an inference-only forward runs the
scan in one pass where it can, so its best tile may differ. For each setting this times
``bench_score.bench`` (default PS model, LLR only, SNVs at distinct positions) and prints a
table, best first. Fields of a setting as in ``genomamba/ops/scan_triton.py``:
WARPS,BLOCK_T,SEG_LEN,BWD_PER_SM,BWD_BLOCK_T,BWD_LANES_D,FWD_MAXNREG,BWD_MAXNREG (0: default).

    python benchmarks/tune_score.py --window 1024 --tiles "1,8;2,8;1,16;2,16;4,16"
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_score import bench  # noqa: E402

from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM  # noqa: E402
from genomamba.score.settings import default_batch_size  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--variants", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--tiles", default="1,8;1,4;1,16;2,8;2,16;4,16;1,8,0,0,0,0,128;1,16,0,0,0,0,128")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(GenoMambaConfig()).to(device).eval()
    batch = args.batch_size or default_batch_size(args.window)
    rows = []
    for tile in args.tiles.split(";"):
        os.environ["GENOMAMBA_SCAN_TILE"] = tile
        r = bench(model, device, args.window, ("llr",), args.variants, batch, chunk=max(batch, 64), seed=0)
        rows.append((r["variants_per_second"], tile))
        print(f"tile {tile:<24} {r['variants_per_second']:9.1f} SNVs/s", flush=True)
    print(f"\nwindow {args.window}, batch {batch}, {torch.cuda.get_device_name(device)}: best first")
    for rate, tile in sorted(rows, reverse=True):
        print(f"  {tile:<24} {rate:9.1f} SNVs/s")


if __name__ == "__main__":
    main()
