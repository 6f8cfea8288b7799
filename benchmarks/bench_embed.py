"""Throughput of ``genomamba embed`` (regions/s) and of the ``GM_PLL`` score (variants/s).

Builds the default model (``GenoMambaConfig()``: Caduceus-PS, d_model 256, 16 layers;
random weights, which do not change the speed), then times, after one warm-up batch:

- embed: ``genomamba.infer.embed.strand_averaged`` (both strands, mean pooling, the last
  layer) on random regions of each ``--lengths``, ``--batch-size`` regions a pass, bf16
  autocast on a GPU (the command's default precision); reading regions and writing HDF5
  are not included;
- pll: ``VariantScorer`` with ``scores=("pll",)`` on SNVs, 1-base insertions and 3-base
  deletions at distinct random positions of a random contig (no shared windows), window
  ``--pll-window``; also the forward rows (masked windows) run per variant.

    python benchmarks/bench_embed.py                       # on the GPU if there is one
    python benchmarks/bench_embed.py --device cpu --d-model 32 --n-layer 2 --regions 16 --variants 8

Prints a table (with the device's name) and, with --json, writes the rows to a file.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from genomamba.data.reference import Reference
from genomamba.device import autocast
from genomamba.infer.embed import strand_averaged
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM
from genomamba.score.engine import VariantScorer
from genomamba.score.settings import default_batch_size
from genomamba.score.variants import Allele

BASES = "ACGT"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_embed(model, device, length: int, regions: int, batch_size: int, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    batches = [torch.randint(0, 4, (min(batch_size, regions - i), length), generator=gen)
               for i in range(0, regions, batch_size)]
    layer = model.config.n_layer
    with torch.inference_mode():
        with autocast(device):
            strand_averaged(model, batches[0].to(device), layer, "mean")  # warm-up
        _sync(device)
        start = time.perf_counter()
        for ids in batches:
            with autocast(device):
                strand_averaged(model, ids.to(device), layer, "mean").float().cpu()
        _sync(device)
    seconds = time.perf_counter() - start
    return {"what": "embed", "length": length, "n": regions, "batch_size": batch_size, "seconds": seconds,
            "per_second": regions / seconds, "unit": "regions/s"}


def make_variants(tokens, kind: str, n: int, window: int, rng) -> list[Allele]:
    positions = np.sort(rng.choice(np.arange(window, len(tokens) - window), size=n, replace=False))
    out = []
    for i, pos in enumerate(int(p) for p in positions):
        ref = "".join(BASES[t] for t in tokens[pos : pos + (4 if kind == "del3" else 1)])
        alt = {"snv": BASES[(tokens[pos] + 1) % 4], "ins1": ref + "A", "del3": ref[0]}[kind]
        out.append(Allele(i, 0, "chrB", pos, ref, alt))
    return out


def bench_pll(model, device, window: int, kind: str, variants: int, flank: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 4, size=max(2_000_000, 4 * window * variants)).astype(np.uint8)
    reference = Reference("random", {"chrB": len(tokens)}, lambda name, s, e: tokens[s:e])
    alleles = make_variants(tokens, kind, variants + 2, window, rng)
    scorer = VariantScorer(model, reference, window, device, batch_size=default_batch_size(window),
                           scores=("pll",), pll_flank=flank)
    with torch.inference_mode():
        scorer.score(alleles[:2])  # warm-up
        rows = scorer.work.pll
        _sync(device)
        start = time.perf_counter()
        scorer.score(alleles[2:])
        _sync(device)
    seconds = time.perf_counter() - start
    return {"what": f"pll {kind}", "length": window, "n": variants, "batch_size": scorer.batch_size,
            "seconds": seconds, "per_second": variants / seconds, "unit": "variants/s",
            "rows_per_variant": (scorer.work.pll - rows) / variants}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--lengths", default="1024,16384,131072", help="embed: comma-separated region lengths")
    p.add_argument("--regions", type=int, default=None, help="embed: timed regions per length (default by device)")
    p.add_argument("--batch-size", type=int, default=None, help="embed: regions per pass (default 65536 / length)")
    p.add_argument("--pll-window", type=int, default=1024)
    p.add_argument("--pll-flank", type=int, default=2)
    p.add_argument("--variants", type=int, default=None, help="pll: timed variants per kind (default by device)")
    p.add_argument("--d-model", type=int, default=None)
    p.add_argument("--n-layer", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.manual_seed(args.seed)
    sizes = {k: v for k, v in (("d_model", args.d_model), ("n_layer", args.n_layer)) if v}
    model = GenoMambaForMaskedLM(GenoMambaConfig(**sizes)).to(device).eval()
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    cfg = model.config
    print(f"device: {name}; model: rc_mode {cfg.rc_mode}, d_model {cfg.d_model}, {cfg.n_layer} layers, "
          f"{model.num_parameters() / 1e6:.2f} M parameters")
    rows = []
    for length in (int(x) for x in args.lengths.split(",")):
        n = args.regions or ((512 if length <= 2048 else 64 if length <= 20000 else 8) if cuda else 16)
        rows.append(bench_embed(model, device, length, n, args.batch_size or default_batch_size(length), args.seed))
    for kind in ("snv", "ins1", "del3"):
        n = args.variants or (256 if cuda else 8)
        rows.append(bench_pll(model, device, args.pll_window, kind, n, args.pll_flank, args.seed))
    print(f"{'what':<10} {'length':>7} {'n':>5} {'batch':>5} {'seconds':>8} {'throughput':>18} {'rows/variant':>12}")
    for r in rows:
        rpv = f"{r['rows_per_variant']:.1f}" if "rows_per_variant" in r else ""
        print(f"{r['what']:<10} {r['length']:>7} {r['n']:>5} {r['batch_size']:>5} {r['seconds']:>8.2f} "
              f"{r['per_second']:>8.1f} {r['unit']:<9} {rpv:>12}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": name, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
