"""Where the scan's peak memory goes: the allocations live at the peak of one forward+backward,
grouped by the line that made them (ours, and mamba-ssm's with --peer).

Uses the CUDA caching allocator's own trace (torch.cuda.memory._record_memory_history), replayed
to the moment of the highest allocated total; that total equals the peak bench_scan.py reports
(inputs and output gradient included).

    python benchmarks/scan_memory.py [--rows 0,4] [--peer mamba-ssm] [--top 12]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_scan import DTYPES, SHAPES, make_inputs, ours, peer_scan  # noqa: E402

MIB = 2**20


def _site(frames):
    """The innermost frame in this project, the benchmarks or the peer: 'file:line function'."""
    for f in frames:
        name = f.get("filename", "")
        if any(k in name for k in ("genomamba", "benchmarks", "mamba_ssm", "selective_scan")):
            return f"{os.path.basename(name)}:{f.get('line')} {f.get('name')}"
    return "(outside: " + (f"{os.path.basename(frames[0]['filename'])}:{frames[0]['line']})" if frames else "no stack)")


def live_at_peak(trace):
    """Replay alloc/free events; the live blocks (site -> bytes) when the total was highest."""
    live, total, best, best_live = {}, 0, -1, {}
    for ev in trace:
        action, addr = ev["action"], ev["addr"]
        if action == "alloc":
            live[addr] = (ev["size"], _site(ev.get("frames", [])))
            total += ev["size"]
            if total > best:
                best, best_live = total, dict(live)
        elif action == "free_requested" and addr in live:
            total -= live.pop(addr)[0]
    by_site = {}
    for size, site in best_live.values():
        by_site[site] = by_site.get(site, 0) + size
    return best, by_site


def measure(shape, fn):
    batch, dim, length, nstate, dtype = shape
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.memory._record_memory_history(max_entries=200000, stacks="python")
    try:
        x = make_inputs(batch, dim, length, nstate, DTYPES[dtype], "cuda")
        gout = torch.randn(batch, dim, length, device="cuda", dtype=DTYPES[dtype])
        out = fn(**x)
        grads = torch.autograd.grad(out, list(x.values()), gout)
        torch.cuda.synchronize()
        snap = torch.cuda.memory._snapshot()
    finally:
        torch.cuda.memory._record_memory_history(enabled=None)
    del x, gout, out, grads
    torch.cuda.empty_cache()
    trace = next(t for t in snap["device_traces"] if t)
    return live_at_peak(trace)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="0,4")
    ap.add_argument("--peer", choices=("mamba-ssm",))
    ap.add_argument("--top", type=int, default=14)
    args = ap.parse_args()
    impls = [("ours", ours)] + ([(args.peer, peer_scan(args.peer))] if args.peer else [])
    print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    for i in args.rows.split(","):
        shape = SHAPES[int(i)]
        for name, fn in impls:
            peak, by_site = measure(shape, fn)
            print(f"\n{shape} {name}: peak {peak / MIB:.1f} MiB ({peak / 2**30:.3f} GiB) live at the peak:")
            for site, size in sorted(by_site.items(), key=lambda kv: -kv[1])[:args.top]:
                print(f"  {size / MIB:9.1f} MiB  {site}")
            rest = sorted(by_site.values(), reverse=True)[args.top:]
            if rest:
                print(f"  {sum(rest) / MIB:9.1f} MiB  ({len(rest)} more sites)")


if __name__ == "__main__":
    main()
