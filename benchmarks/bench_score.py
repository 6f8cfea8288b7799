"""Variant-scoring throughput: SNVs scored per second by ``genomamba score``'s engine.

Builds the default model (``GenoMambaConfig()``: Caduceus-PS, d_model 256, 16 layers;
random weights, which do not change the speed), a random reference contig held in memory
and SNVs at distinct random positions (no two share a window: the worst case), then times
``VariantScorer.score`` over them, chunk by chunk as ``genomamba score`` does, after one
warm-up chunk. VCF parsing and writing are not included (they are far faster).

    python benchmarks/bench_score.py --device cuda                     # 1k, 16k, 131k windows
    python benchmarks/bench_score.py --device cpu --windows 1024 --variants 16

Prints one line per setting, then a table of SNVs/s beside the two floors of the work (the
model's matrix FLOPs at MATMUL_RATE, the scan's exponentials at EXP_RATE: see
``floors``) and the fraction of the floor reached; with --json, writes the results to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM
from genomamba.score.engine import VariantScorer
from genomamba.data.reference import Reference
from genomamba.score.settings import default_batch_size
from genomamba.score.variants import Allele

BASES = "ACGT"
#: the H200's ceilings, as measured there (benchmarks/RESULTS.md): bf16 matrix products on
#: random data, and the exponentials per second the scan benchmark uses as its floor
MATMUL_RATE = 790e12
EXP_RATE = 3.6e12


def floors(model, window: int, scores) -> tuple[float, float]:
    """SNVs/s if only the matrix FLOPs, or only the scan's exponentials, took time. Per SNV at
    distinct positions: one masked pass for llr, a REF and an ALT pass for emb; each pass runs
    both strands (2 windows) through every layer."""
    cfg = model.config
    span = 2 * ((window - 1) // 2) + 1
    passes = ("llr" in scores) + 2 * ("emb" in scores)
    weights = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embedding" not in n)
    flops = 2 * weights * span * 2 * passes
    exps = cfg.d_inner * cfg.d_state * span * cfg.n_layer * (2 if cfg.bidirectional else 1) * 2 * passes
    return MATMUL_RATE / flops, EXP_RATE / exps


def make_reference(length: int, seed: int) -> tuple[Reference, np.ndarray]:
    tokens = np.random.default_rng(seed).integers(0, 4, size=length).astype(np.uint8)
    return Reference("random", {"chrB": length}, lambda name, s, e: tokens[s:e]), tokens


def make_snvs(tokens: np.ndarray, n: int, window: int, seed: int) -> list[Allele]:
    rng = np.random.default_rng(seed + 1)
    positions = np.sort(rng.choice(np.arange(window, len(tokens) - window), size=n, replace=False))
    out = []
    for i, pos in enumerate(positions):
        ref = BASES[tokens[pos]]
        alt = BASES[(tokens[pos] + 1 + rng.integers(3)) % 4]
        out.append(Allele(i, 0, "chrB", int(pos), ref, alt))
    return out


def bench(model, device, window, scores, variants, batch_size, chunk, seed):
    ref, tokens = make_reference(max(4 * window, 2_000_000), seed)
    alleles = make_snvs(tokens, variants + chunk, window, seed)
    scorer = VariantScorer(model, ref, window, device, batch_size=batch_size, scores=scores)
    with torch.inference_mode():
        scorer.score(alleles[:chunk])  # warm-up (kernel compilation, allocator)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        timed = alleles[chunk:]
        for i in range(0, len(timed), chunk):
            scorer.score(timed[i : i + chunk])
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "window": window,
        "scores": ",".join(scores),
        "variants": len(timed),
        "batch_size": batch_size,
        "seconds": round(seconds, 3),
        "variants_per_second": round(len(timed) / seconds, 3),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--windows", default="1024,16384,131072", help="comma-separated window sizes")
    p.add_argument("--scores", default="llr;llr,emb", help="score sets, separated by ';' (default: llr, then llr+emb)")
    p.add_argument("--variants", type=int, default=None, help="timed SNVs per setting (default by window)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per forward pass (default by window)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = GenoMambaForMaskedLM(GenoMambaConfig()).to(device).eval()
    print(f"model: default GenoMambaConfig (rc_mode ps, d_model 256, 16 layers), "
          f"{model.num_parameters() / 1e6:.2f} M parameters, on {device}", file=sys.stderr)
    results = []
    for window in (int(w) for w in args.windows.split(",")):
        batch = args.batch_size or default_batch_size(window, device)
        default_n = (256 if window <= 2048 else 64 if window <= 20000 else 16) if device.type == "cuda" else 8
        # whole batches only: every timed forward has the warm-up's shape (the scan's segment
        # length, a compile-time constant, follows the batch)
        n = -(-(args.variants or default_n) // batch) * batch
        for score_set in args.scores.split(";"):
            scores = tuple(s for s in score_set.split(",") if s)
            r = bench(model, device, window, scores, n, batch, chunk=batch, seed=args.seed)
            results.append(r)
            print(f"window {window:>6}  scores {r['scores']:<8}  batch {batch:>3}  {r['variants']:>4} SNVs in "
                  f"{r['seconds']:8.2f} s  ->  {r['variants_per_second']:9.2f} SNVs/s"
                  + (f"  (peak {r['peak_gpu_mb']} MB)" if r["peak_gpu_mb"] else ""), flush=True)
    print(f"\n| window | scores | batch | SNVs/s | matmul floor | scan floor | fraction of the floor |\n"
          f"|---|---|---|---|---|---|---|")
    for r in results:
        mat, scan = floors(model, r["window"], r["scores"].split(","))
        r["floor_matmul"], r["floor_scan"] = round(mat, 1), round(scan, 1)
        r["fraction_of_floor"] = round(r["variants_per_second"] / min(mat, scan), 3)
        print(f"| {r['window']} | {r['scores']} | {r['batch_size']} | {r['variants_per_second']:.1f} | {mat:.0f} | "
              f"{scan:.1f} | {r['fraction_of_floor']:.2f} |")
    print(f"(device: {results[0]['device'] if results else device}; floors at {MATMUL_RATE / 1e12:.0f} TFLOP/s "
          f"and {EXP_RATE:.1e} exp/s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
