"""Track throughput: positions scored per second by ``genomamba track``'s engine.

Builds the default model (``GenoMambaConfig()``; random weights, which do not change the
speed) and a random reference contig held in memory, then times ``part_logp`` (one masked
forward pass per position, both strands, log-softmax over A, C, G, T) over consecutive
positions, after one warm-up part. Writing the bigWig is not included (it is far faster).

    python benchmarks/bench_track.py --device cuda                    # 1k windows, 4096 positions
    python benchmarks/bench_track.py --device cpu --positions 16

Goal (issue 20): 1 Mb of exact masked scores in under 5 minutes on one H200 at 1k windows,
i.e. >= 3,334 positions/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from genomamba.data.reference import Reference
from genomamba.device import inference_batch
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM
from genomamba.track.plan import Part
from genomamba.track.run import part_logp


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--positions", type=int, default=None, help="timed positions (default: 4096 on GPU, 16 on CPU)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per forward pass (default: genomamba.device.inference_batch)")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n = args.positions or (4096 if device.type == "cuda" else 16)
    batch = args.batch_size or inference_batch(args.window, device)
    torch.manual_seed(args.seed)
    model = GenoMambaForMaskedLM(GenoMambaConfig()).to(device).eval()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"model: default GenoMambaConfig, {model.num_parameters() / 1e6:.2f} M parameters, on {name}",
          file=sys.stderr)
    length = 2 * args.window + 2 * n + 2 * batch
    tokens = np.random.default_rng(args.seed).integers(0, 4, size=length).astype(np.uint8)
    reference = Reference("random", {"chrB": length}, lambda _, s, e: tokens[s:e])
    with torch.inference_mode():
        part_logp(model, reference, Part("chrB", 0, batch), (args.window - 1) // 2, device, batch, args.precision)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        part_logp(model, reference, Part("chrB", batch, batch + n), (args.window - 1) // 2, device, batch,
                  args.precision)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    result = {"device": name, "window": 2 * ((args.window - 1) // 2) + 1, "positions": n, "batch_size": batch,
              "precision": args.precision, "seconds": round(seconds, 3),
              "positions_per_second": round(n / seconds, 3), "seconds_per_mb": round(1e6 * seconds / n, 1)}
    print(f"{name}: window {result['window']}  batch {batch}  {n} positions in {seconds:.2f} s  ->  "
          f"{result['positions_per_second']:.2f} positions/s ({result['seconds_per_mb']:.0f} s per Mb)", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
