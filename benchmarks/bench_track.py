"""Track throughput: positions scored per second by ``genomamba track``'s engine.

Builds the default model (``GenoMambaConfig()``; random weights, which do not change the
speed) and a random reference contig held in memory, then times ``part_logp`` (one masked
forward pass per position, both strands, log-softmax over A, C, G, T) over consecutive
positions, after one warm-up part. Writing the bigWig is not included (it is far faster).

    python benchmarks/bench_track.py --device cuda                    # 1k windows, 4096 positions
    python benchmarks/bench_track.py --device cpu --positions 16
    python benchmarks/bench_track.py --model runs/tiny --reference resources/NC_001133.9.fa.gz \
        --masks-per-window 4 --mask-spacing 64 --window 512   # agreement of a trained model on real sequence

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

from genomamba.data.reference import Reference, open_reference
from genomamba.device import inference_batch
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM
from genomamba.track.plan import Part
from genomamba.track.output import position_scores
from genomamba.track.run import agreement, part_logp, part_logp_approximate


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--positions", type=int, default=None, help="timed positions (default: 4096 on GPU, 16 on CPU)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per forward pass (default: genomamba.device.inference_batch)")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--masks-per-window", type=int, default=1,
                   help="K > 1: time the approximate mode (K masks per pass) and its agreement with exact scores")
    p.add_argument("--mask-spacing", type=int, default=128)
    p.add_argument("--model", help="a trained model (run directory or model/) instead of random weights: "
                                   "the approximate mode's agreement means something only for a trained model")
    p.add_argument("--reference", help="score positions of this genome (FASTA or token shards) instead of random "
                                       "tokens: with --model, the approximate mode's agreement on real sequence")
    p.add_argument("--contig", help="contig of --reference (default: its first)")
    p.add_argument("--start", type=int, default=None,
                   help="first timed position on the contig (default: one window past the warm-up part)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n = args.positions or (4096 if device.type == "cuda" else 16)
    batch = args.batch_size or inference_batch(args.window, device)
    torch.manual_seed(args.seed)
    if args.model:
        from genomamba.model.locate import locate_model

        model = locate_model(args.model).load(device)
    else:
        model = GenoMambaForMaskedLM(GenoMambaConfig()).to(device).eval()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"model: default GenoMambaConfig, {model.num_parameters() / 1e6:.2f} M parameters, on {name}",
          file=sys.stderr)
    first = args.start if args.start is not None else batch + args.window
    if args.reference:
        reference = open_reference(args.reference, in_memory=True)
        contig = args.contig or reference.contigs[0]
        if first + n > reference.length(contig):
            raise SystemExit(f"{args.reference}: {contig} has {reference.length(contig)} bases, "
                             f"fewer than --start {first} + {n} positions")
    else:
        contig, length = "chrB", first + n + args.window
        random_tokens = np.random.default_rng(args.seed).integers(0, 4, size=length).astype(np.uint8)
        reference = Reference("random", {contig: length}, lambda _, s, e: random_tokens[s:e])
    with torch.inference_mode():
        part_logp(model, reference, Part(contig, 0, batch), (args.window - 1) // 2, device, batch, args.precision)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        timed = Part(contig, first, first + n)
        flank = (args.window - 1) // 2
        if args.masks_per_window > 1:
            logp = part_logp_approximate(model, reference, timed, flank, device, batch, args.precision,
                                         args.masks_per_window, args.mask_spacing)
        else:
            logp = part_logp(model, reference, timed, flank, device, batch, args.precision)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        agree = None
        if args.masks_per_window > 1:  # exact scores at a sample of the timed (A, C, G, T) positions
            ref = reference.fetch(contig, timed.start, timed.end)
            acgt = np.flatnonzero(ref < 4)
            sample = np.sort(np.random.default_rng(1).choice(acgt, size=min(len(acgt), 2048), replace=False))
            exact = part_logp(model, reference, timed, flank, device, batch, args.precision, sample)
            agree = agreement(position_scores(logp, ref, "min-llr")[sample], position_scores(exact, ref, "min-llr")[sample])
    result = {"device": name, "window": 2 * ((args.window - 1) // 2) + 1, "positions": n, "batch_size": batch,
              "precision": args.precision, "seconds": round(seconds, 3),
              "positions_per_second": round(n / seconds, 3), "seconds_per_mb": round(1e6 * seconds / n, 1),
              "masks_per_window": args.masks_per_window, "mask_spacing": args.mask_spacing,
              "model": args.model or "random weights",
              "reference": f"{args.reference}:{contig}:{first}" if args.reference else "random tokens",
              "agreement_min_llr": agree}
    print(f"{name}: window {result['window']}  batch {batch}  {n} positions in {seconds:.2f} s  ->  "
          f"{result['positions_per_second']:.2f} positions/s ({result['seconds_per_mb']:.0f} s per Mb)"
          + (f"  approximate ({args.masks_per_window} masks, {args.mask_spacing} apart), min-llr vs exact at "
             f"{agree['positions']} positions: Pearson {agree['pearson']}, Spearman {agree['spearman']} "
             f"({result['model']}, {result['reference']})" if agree else ""), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
