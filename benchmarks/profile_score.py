"""Where variant scoring spends its time: the PyTorch profiler over ``VariantScorer.score``.

Same setting as ``bench_score.py`` (default PS model, random weights, SNVs at distinct
positions, LLR only); after a warm-up it profiles one chunk and prints the kernels and
operators that take the most GPU (or CPU) time, then a per-stage breakdown from the
scorer's own timers (window assembly, host->device copy, forward, scores, device->host).

    python benchmarks/profile_score.py --device cuda --window 1024 --variants 512
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_score import make_reference, make_snvs  # noqa: E402

from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM  # noqa: E402
from genomamba.score.engine import VariantScorer  # noqa: E402
from genomamba.score.settings import default_batch_size  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--variants", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--scores", default="llr")
    p.add_argument("--rows", type=int, default=25, help="profiler table rows")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(GenoMambaConfig()).to(device).eval()
    batch = args.batch_size or default_batch_size(args.window)
    ref, tokens = make_reference(max(4 * args.window, 2_000_000), 0)
    alleles = make_snvs(tokens, 2 * args.variants, args.window, 0)
    scores = tuple(args.scores.split(","))
    scorer = VariantScorer(model, ref, args.window, device, batch_size=batch, scores=scores)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        scorer.score(alleles[: args.variants])  # warm-up
        sync()
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            start = time.perf_counter()
            scorer.score(alleles[args.variants :])
            sync()
            seconds = time.perf_counter() - start
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=args.rows))
    print(f"window {args.window}, batch {batch}, scores {args.scores}: {args.variants} SNVs in {seconds:.3f} s "
          f"under the profiler -> {args.variants / seconds:.1f} SNVs/s")


if __name__ == "__main__":
    main()
