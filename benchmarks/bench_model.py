"""One full masked-LM training step of the model: speed and memory beside Caduceus.

A step is forward, loss, backward and AdamW under bf16 autocast, on random tokens
with 15% of positions masked. After ``--warmup`` steps (Triton compilation,
allocator warm-up) it times ``--steps`` steps and reports the median s/step,
tokens/s (batch * length / s) and the peak memory (GPU: peak allocated by torch;
CPU: peak RSS of the process), beside the Caduceus anchor (one H100, L = 131,072,
batch 1, d_model 256, 16 layers) and the ratios when the setup is the anchor's.

    python benchmarks/bench_model.py                          # ps, L 131072, batch 1, GPU
    python benchmarks/bench_model.py --mode ph --checkpointing
    python benchmarks/bench_model.py --length 1024 --d-model 32 --n-layer 2 --device cpu
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F

from genomamba.data.vocab import MASK, VOCAB_SIZE
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

ANCHOR_LENGTH, ANCHOR_BATCH, ANCHOR_D_MODEL, ANCHOR_N_LAYER = 131_072, 1, 256, 16
#: mode -> (name, s/step, tokens/s, peak GiB), Caduceus at the setup above
ANCHORS = {
    "ps": ("Caduceus-PS", 0.787, 166_467, 36.3),
    "ph": ("Caduceus-Ph", 0.371, 353_712, 18.2),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("ps", "ph"), default="ps", help="RC mode (default ps)")
    p.add_argument("--batch", type=int, default=ANCHOR_BATCH)
    p.add_argument("--length", type=int, default=ANCHOR_LENGTH)
    p.add_argument("--d-model", type=int, default=ANCHOR_D_MODEL)
    p.add_argument("--n-layer", type=int, default=ANCHOR_N_LAYER)
    p.add_argument("--checkpointing", action="store_true", help="activation checkpointing per block")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--backend", default="auto", choices=("auto", "triton", "torch"), help="scan backend")
    p.add_argument("--no-autocast", action="store_true", help="fp32 instead of bf16 autocast")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--profile", action="store_true",
                   help="after the timed steps, profile one step: forward/backward/optimizer split, "
                        "activation memory, and the top GPU kernels (torch.profiler)")
    return p.parse_args(argv)


def make_batch(batch, length, device, seed):
    g = torch.Generator(device="cpu").manual_seed(seed)
    labels = torch.randint(0, 4, (batch, length), generator=g)
    masked = torch.rand(batch, length, generator=g) < 0.15
    inputs = labels.masked_fill(masked, MASK)
    labels = labels.masked_fill(~masked, -100)
    return inputs.to(device), labels.to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def run(args):
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    config = GenoMambaConfig(
        d_model=args.d_model, n_layer=args.n_layer, rc_mode=args.mode, scan_backend=args.backend,
        gradient_checkpointing=args.checkpointing,
    )
    model = GenoMambaForMaskedLM(config).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01,
                            fused=device.type == "cuda")
    inputs, labels = make_batch(args.batch, args.length, device, args.seed)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = mlm_loss(model, inputs, labels, not args.no_autocast)
        loss.backward()
        opt.step()
        return loss

    times, losses = [], []
    for i in range(args.warmup + args.steps):
        if i == args.warmup and device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        start = time.perf_counter()
        losses.append(step())
        sync(device)
        times.append(time.perf_counter() - start)
    losses = [x.item() for x in losses]
    if not all(map(lambda x: x == x and abs(x) != float("inf"), losses)):
        raise SystemExit(f"non-finite loss: {losses}")
    timed = times[args.warmup:]
    s_step = statistics.median(timed)
    if args.profile:
        profile_step(model, opt, inputs, labels, device, not args.no_autocast)
    return {
        "mode": args.mode, "batch": args.batch, "length": args.length, "d_model": args.d_model,
        "n_layer": args.n_layer, "checkpointing": args.checkpointing, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "backend": args.backend, "autocast_bf16": not args.no_autocast,
        "parameters": model.num_parameters(),
        "first_step_s": times[0], "s_per_step": s_step, "s_per_step_min": min(timed),
        "s_per_step_max": max(timed), "tokens_per_s": args.batch * args.length / s_step,
        "peak_gib": peak_gib(device), "peak_kind": "allocated" if device.type == "cuda" else "process RSS",
        "loss_first": losses[0], "loss_last": losses[-1],
    }


def mlm_loss(model, inputs, labels, autocast):
    """The step's forward: masked-LM cross-entropy, under bf16 autocast unless disabled."""
    with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = model(inputs)
        return F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), labels.reshape(-1), ignore_index=-100)


def profile_step(model, opt, inputs, labels, device, autocast):
    """Print where one step's time and memory go (GPU only)."""
    if device.type != "cuda":
        print("--profile needs a GPU")
        return
    from torch.profiler import ProfilerActivity, profile

    marks = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
    opt.zero_grad(set_to_none=True)
    sync(device)
    before = torch.cuda.memory_allocated(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        marks[0].record()
        loss = mlm_loss(model, inputs, labels, autocast)
        marks[1].record()
        sync(device)
        activations = torch.cuda.memory_allocated(device) - before
        loss.backward()
        marks[2].record()
        opt.step()
        marks[3].record()
        sync(device)
    fwd, bwd, step = (marks[i].elapsed_time(marks[i + 1]) for i in range(3))
    print(f"profiled step: forward {fwd:.1f} ms, backward {bwd:.1f} ms, optimizer {step:.1f} ms; "
          f"memory held from forward to backward {activations / 2**30:.2f} GiB")
    print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=70))


def comparable(r):
    return (r["device"].startswith("cuda") and r["length"] == ANCHOR_LENGTH and r["batch"] == ANCHOR_BATCH
            and r["d_model"] == ANCHOR_D_MODEL and r["n_layer"] == ANCHOR_N_LAYER and r["autocast_bf16"])


def report(r):
    name, a_s, a_tok, a_gib = ANCHORS[r["mode"]]
    print(f"genomamba-{r['mode']}: {r['parameters']:,} parameters, batch {r['batch']}, L {r['length']:,}, "
          f"d_model {r['d_model']}, {r['n_layer']} layers, checkpointing {'on' if r['checkpointing'] else 'off'}, "
          f"{'bf16 autocast' if r['autocast_bf16'] else 'fp32'}, scan backend {r['backend']}, "
          f"{r['device_name']}")
    print(f"first step {r['first_step_s']:.3f} s; timed steps {r['s_per_step_min']:.3f} .. "
          f"{r['s_per_step_max']:.3f} s; loss {r['loss_first']:.3f} -> {r['loss_last']:.3f}")
    print()
    print(f"{'':24s} {'s/step':>10s} {'tokens/s':>12s} {'peak GiB':>10s}")
    print(f"{'genomamba-' + r['mode']:24s} {r['s_per_step']:10.3f} {r['tokens_per_s']:12,.0f} "
          f"{r['peak_gib']:10.2f}" + ("" if r["peak_kind"] == "allocated" else "  (process RSS)"))
    print(f"{name + ' (anchor)':24s} {a_s:10.3f} {a_tok:12,d} {a_gib:10.1f}")
    if comparable(r):
        print(f"{'ratio ours / anchor':24s} {r['s_per_step'] / a_s:10.2f} {r['tokens_per_s'] / a_tok:12.2f} "
              f"{r['peak_gib'] / a_gib:10.2f}")
        print(f"-> {a_s / r['s_per_step']:.2f}x the anchor's speed, {r['peak_gib'] / a_gib:.2f}x its memory")
    else:
        print(f"(no ratios: the anchor is batch {ANCHOR_BATCH}, L {ANCHOR_LENGTH:,}, d_model {ANCHOR_D_MODEL}, "
              f"{ANCHOR_N_LAYER} layers, bf16, on one H100)")


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
