"""Selective-scan speed and memory: ours beside mamba-ssm's CUDA kernel, in the same process.

GPU (default when CUDA is there): for each benchmark shape, the median forward and
forward+backward time (triton.testing.do_bench), the peak memory allocated over one
forward+backward (inputs included, the same recipe for both), the physical floors (this
GPU's device-to-device copy bandwidth, measured at the start, and the scan's exponentials
at EXP_RATE), first-call compile time, and a check of every shape against a float64
reference. With ``--peer mamba-ssm`` the same inputs and output gradient also go through
mamba-ssm v2.3.2's ``selective_scan_fn`` (built here by benchmarks/peers.py from the
sources benchmarks/get_peers.sh fetches), checked against ours at a small shape first, and
the table gets its times, peaks and the ratios. Also: the fused bidirectional call against
two single-direction calls plus the flips they replace.

CPU (--cpu): the torch backend at (1, 64, 131072, 16) fp32 forward+backward beside
a per-time-step loop.

    python benchmarks/bench_scan.py [--peer mamba-ssm] [--rows 0,1] [--skip-check] [--json OUT.json]
    python benchmarks/bench_scan.py --cpu
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from genomamba.ops import selective_scan, selective_scan_bidirectional
from genomamba.ops.scan_ref import selective_scan_ref

#: (batch, dim, L, N, dtype)
SHAPES = [
    (1, 512, 131072, 16, "bf16"),
    (1, 512, 131072, 16, "fp32"),
    (4, 512, 131072, 16, "bf16"),
    (2, 1536, 131072, 16, "bf16"),
    (8, 1024, 16384, 16, "bf16"),
    (1, 512, 1048576, 16, "bf16"),
]
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}
COPY_BANDWIDTH = 3.0e12  # bytes/s (read + write); replaced by this GPU's own, measured at the start
EXP_RATE = 1.07e9 / 0.3e-3  # exponentials/s: the compute floor the scan work has used (1.07e9 exps ~ 0.3 ms)


def make_inputs(batch, dim, length, nstate, dtype, device, seed=0, requires_grad=True):
    g = torch.Generator(device=device).manual_seed(seed)
    r = lambda *s, dt=dtype: torch.randn(*s, generator=g, device=device, dtype=torch.float32).to(dt)  # noqa: E731
    x = dict(
        u=r(batch, dim, length),
        delta=(0.5 * r(batch, dim, length, dt=torch.float32) - 2.0).to(dtype),
        A=-torch.rand(dim, nstate, generator=g, device=device) * 4 - 0.5,
        B=r(batch, nstate, length),
        C=r(batch, nstate, length),
        D=r(dim, dt=torch.float32),
        z=r(batch, dim, length),
        delta_bias=0.5 * r(dim, dt=torch.float32),
    )
    return {k: v.requires_grad_(requires_grad) for k, v in x.items()}


def floors(batch, dim, length, nstate, dtype):
    s = torch.finfo(DTYPES[dtype]).bits // 8
    bdl, bnl = batch * dim * length, batch * nstate * length
    fwd_bytes = 4 * s * bdl + 2 * s * bnl  # u, delta, z in; out; B, C in
    bwd_bytes = 7 * s * bdl + 2 * s * bnl + 2 * 4 * bnl  # + dout in, du/ddelta/dz out; dB/dC fp32
    exps = bdl * nstate
    fwd = max(fwd_bytes / COPY_BANDWIDTH, exps / EXP_RATE)
    both = max((fwd_bytes + bwd_bytes) / COPY_BANDWIDTH, 2 * exps / EXP_RATE)
    return fwd * 1e3, both * 1e3, fwd_bytes / COPY_BANDWIDTH * 1e3, exps / EXP_RATE * 1e3


def rel_err(x, ref):
    return ((x.double() - ref.double()).norm() / ref.double().norm()).item()


def check(shape, device):
    """Ours (fp32 or bf16 inputs) against the float64 torch path on the same inputs."""
    batch, dim, length, nstate, dtype = shape
    x = make_inputs(batch, dim, length, nstate, DTYPES[dtype], device, seed=torch.seed() % 2**31)
    out = selective_scan(**x, delta_softplus=True)
    gout = torch.randn_like(out)
    grads = torch.autograd.grad(out, list(x.values()), gout)
    x64 = {k: v.detach().double().requires_grad_() for k, v in x.items()}
    ref = selective_scan(**x64, delta_softplus=True, backend="torch")
    ref_grads = torch.autograd.grad(ref, list(x64.values()), gout.double())
    errs = {"out": rel_err(out, ref)}
    errs.update({k: rel_err(g, rg) for k, g, rg in zip(x, grads, ref_grads)})
    del ref, ref_grads, x64
    torch.cuda.empty_cache()
    return errs


def ours(u, delta, A, B, C, D, z, delta_bias):
    return selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus=True)


def peer_scan(name):
    """The peer's scan with our argument order (mamba-ssm's own: u, delta, A, B, C, D, z, delta_bias)."""
    if name != "mamba-ssm":
        raise SystemExit(f"unknown peer {name!r} (known: mamba-ssm)")
    from peers import load_mamba_ssm

    fn = load_mamba_ssm()
    return lambda u, delta, A, B, C, D, z, delta_bias: fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus=True)


def check_peer(peer, device, shape=(2, 128, 4096, 16, "fp32")):
    """The peer and ours on the same small inputs, each against the float64 reference."""
    batch, dim, length, nstate, dtype = shape
    x = make_inputs(batch, dim, length, nstate, DTYPES[dtype], device, seed=torch.seed() % 2**31)
    gout = torch.randn(batch, dim, length, device=device, dtype=DTYPES[dtype])
    x64 = {k: v.detach().double().requires_grad_() for k, v in x.items()}
    ref = selective_scan(**x64, delta_softplus=True, backend="torch")
    ref_grads = torch.autograd.grad(ref, list(x64.values()), gout.double())
    worst = {}
    for name, fn in (("ours", ours), ("mamba-ssm", peer)):
        out = fn(**x)
        grads = torch.autograd.grad(out, list(x.values()), gout)
        errs = {"out": rel_err(out, ref), **{k: rel_err(g, rg) for k, g, rg in zip(x, grads, ref_grads)}}
        worst[name] = max(errs.items(), key=lambda kv: kv[1])
    print(f"peer check {shape} vs float64: " + ", ".join(f"{n} worst rel err {e:.2e} ({k})" for n, (k, e) in worst.items()),
          flush=True)
    return worst


def copy_bandwidth(device, nbytes=2**31):
    """Device-to-device copy, bytes read + written per second (the memory floor's rate)."""
    from triton.testing import do_bench

    a = torch.empty(nbytes // 4, device=device, dtype=torch.float32).normal_()
    b = torch.empty_like(a)
    ms = do_bench(lambda: b.copy_(a), warmup=10, rep=100, return_mode="median")
    del a, b
    torch.cuda.empty_cache()
    return 2 * nbytes / (ms * 1e-3)


def bench_row(shape, device, fn=ours):
    from triton.testing import do_bench

    batch, dim, length, nstate, dtype = shape
    x = make_inputs(batch, dim, length, nstate, DTYPES[dtype], device)
    gout = torch.randn(batch, dim, length, device=device, dtype=DTYPES[dtype],
                       generator=torch.Generator(device=device).manual_seed(1))
    leaves = list(x.values())

    def fwd():
        with torch.no_grad():
            return fn(**x)

    def fwd_bwd():
        out = fn(**x)
        return torch.autograd.grad(out, leaves, gout)

    t0 = time.perf_counter()
    fwd_bwd()
    torch.cuda.synchronize()
    first_call = time.perf_counter() - t0
    t_fwd = do_bench(fwd, warmup=50, rep=300, return_mode="median")
    t_both = do_bench(fwd_bwd, warmup=50, rep=300, return_mode="median")
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    fwd_bwd()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30  # inputs included, as a user sees it
    del x, gout, leaves
    torch.cuda.empty_cache()
    return t_fwd, t_both, peak, first_call


def bench_bidirectional(device, batch=2, dim=512, length=131072, nstate=16, dtype="bf16"):
    """Fused call vs two single-direction calls with the flips BiMamba would otherwise do."""
    from triton.testing import do_bench

    xs = [make_inputs(batch, dim, length, nstate, DTYPES[dtype], device, seed=s) for s in (1, 2)]
    st = {k: torch.stack([xs[0][k], xs[1][k]]).detach().requires_grad_() for k in xs[0] if k != "z"}
    z = xs[0]["z"].detach().requires_grad_()
    gout = torch.randn(batch, dim, length, device=device, dtype=DTYPES[dtype])
    fused_leaves = list(st.values()) + [z]

    def fused():
        out = selective_scan_bidirectional(**st, z=z, delta_softplus=True)
        return torch.autograd.grad(out, fused_leaves, gout)

    def two_calls_with_flips():
        f = selective_scan(**{k: v[0] for k, v in st.items()}, z=z, delta_softplus=True)
        flip = lambda t: t.flip(-1)  # noqa: E731
        r = selective_scan(flip(st["u"][1]), flip(st["delta"][1]), st["A"][1], flip(st["B"][1]),
                           flip(st["C"][1]), st["D"][1], flip(z), st["delta_bias"][1], delta_softplus=True)
        out = f + flip(r)
        return torch.autograd.grad(out, fused_leaves, gout)

    def two_calls_reverse():
        f = selective_scan(**{k: v[0] for k, v in st.items()}, z=z, delta_softplus=True)
        r = selective_scan(**{k: v[1] for k, v in st.items()}, z=z, delta_softplus=True, reverse=True)
        return torch.autograd.grad(f + r, fused_leaves, gout)

    res = {}
    for name, fn in (("fused", fused), ("two calls + flips", two_calls_with_flips),
                     ("two calls, reverse=True", two_calls_reverse)):
        fn()
        res[name] = do_bench(fn, warmup=25, rep=200, return_mode="median")
    return res


def cpu_bench(length=131072, loop_length=8192):
    """The torch path at full length; the per-step loop (mamba-ssm's selective_scan_ref
    style) at ``loop_length`` and scaled linearly to ``length`` (its cost is linear in L)."""
    rows = []
    for name, fn, n in (("torch backend (chunked)", lambda **k: selective_scan(**k, backend="torch"), length),
                        ("per-time-step loop", selective_scan_ref, loop_length)):
        x = make_inputs(1, 64, n, 16, torch.float32, "cpu")
        leaves = list(x.values())
        t0 = time.perf_counter()
        out = fn(**x, delta_softplus=True)
        t1 = time.perf_counter()
        torch.autograd.grad(out, leaves, torch.ones_like(out))
        t2 = time.perf_counter()
        scale = length / n
        rows.append((name + ("" if n == length else f" (at L={n}, x{scale:g})"), (t1 - t0) * scale, (t2 - t0) * scale))
        del out, x, leaves
    print(f"\nCPU, (1, 64, {length}, 16) fp32, {torch.get_num_threads()} threads")
    print(f"{'implementation':44s} {'fwd s':>8s} {'fwd+bwd s':>10s}")
    for name, f, b in rows:
        print(f"{name:44s} {f:8.2f} {b:10.2f}")
    print(f"speed-up fwd: {rows[1][1] / rows[0][1]:.1f}x, fwd+bwd: {rows[1][2] / rows[0][2]:.1f}x")


def main():
    global COPY_BANDWIDTH
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", action="store_true", help="CPU comparison of the torch path")
    ap.add_argument("--peer", choices=("mamba-ssm",), help="also time this peer, side by side")
    ap.add_argument("--rows", default=None, help="comma-separated row indices (default: all)")
    ap.add_argument("--skip-check", action="store_true")
    ap.add_argument("--skip-bidir", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.cpu or not torch.cuda.is_available():
        cpu_bench()
        return
    device = "cuda"
    print(torch.cuda.get_device_name(), "torch", torch.__version__, time.strftime("%Y-%m-%d"), flush=True)
    COPY_BANDWIDTH = copy_bandwidth(device)
    print(f"device-to-device copy: {COPY_BANDWIDTH / 1e12:.2f} TB/s (read + write); exp floor rate "
          f"{EXP_RATE:.2e}/s", flush=True)
    rows = SHAPES if args.rows is None else [SHAPES[int(i)] for i in args.rows.split(",")]
    peer = peer_scan(args.peer) if args.peer else None
    peer_check = check_peer(peer, device) if peer else None
    results = []
    if not args.skip_check:
        # the float64 torch reference needs about 40x the bf16 inputs' memory: rows that fit
        for shape in [r for r in rows if r[0] * r[1] * r[2] <= 4 * 512 * 131072]:
            errs = check(shape, device)
            tol = 1e-5 if shape[-1] == "fp32" else 1e-2
            worst = max(errs, key=errs.get)
            print(f"check {shape}: worst rel err {errs[worst]:.2e} ({worst}) {'OK' if errs[worst] <= tol else 'FAIL'}",
                  flush=True)
    for shape in rows:
        r = dict(shape=shape)
        r["fwd"], r["fwd_bwd"], r["peak_gib"], r["first_call_s"] = bench_row(shape, device)
        if peer:
            r["peer_fwd"], r["peer_fwd_bwd"], r["peer_peak_gib"], _ = bench_row(shape, device, peer)
        r["floor_fwd"], r["floor_fwd_bwd"], _, _ = floors(*shape)
        results.append(r)
        print(f"done {shape}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items() if k != "shape"), flush=True)
    bidir = None if args.skip_bidir else bench_bidirectional(device)
    name = args.peer or "peer"
    print(f"\n{torch.cuda.get_device_name()}, {time.strftime('%Y-%m-%d')}, medians of triton.testing.do_bench; "
          f"peak = max_memory_allocated over one fwd+bwd, inputs included")
    print(f"(batch, dim, L, N) dtype | fwd ms: ours / {name} / ratio / floor | fwd+bwd ms: ours / {name}"
          f" / speed-up / floor | peak GiB: ours / {name} / ratio | first call s")
    dash = "-"
    for r in results:
        b, d, length, n, dt = r["shape"]
        pf, pb, pp = (r.get(k) for k in ("peer_fwd", "peer_fwd_bwd", "peer_peak_gib"))
        fmt = lambda v, spec=".2f": dash if v is None else format(v, spec)  # noqa: E731
        print(f"({b}, {d}, {length}, {n}) {dt} | {r['fwd']:.2f} / {fmt(pf)} / {fmt(pf and pf / r['fwd'])}x / "
              f"{r['floor_fwd']:.2f} | {r['fwd_bwd']:.2f} / {fmt(pb)} / {fmt(pb and pb / r['fwd_bwd'])}x / "
              f"{r['floor_fwd_bwd']:.2f} | {r['peak_gib']:.2f} / {fmt(pp)} / {fmt(pp and r['peak_gib'] / pp)} | "
              f"{r['first_call_s']:.1f}")
    if bidir:
        print("\nBiMamba scan fwd+bwd, (2, 512, 131072, 16) bf16 per direction, ms:",
              ", ".join(f"{k} {v:.2f}" for k, v in bidir.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), date=time.strftime("%Y-%m-%d"),
                           copy_bandwidth=COPY_BANDWIDTH, peer=args.peer, peer_check=peer_check,
                           rows=results, bidirectional=bidir), f, indent=1)


if __name__ == "__main__":
    main()
