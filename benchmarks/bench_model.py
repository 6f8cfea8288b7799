"""One full masked-LM training step of the model: speed and memory, beside Caduceus's own code.

A step is forward, loss, backward and AdamW under bf16 autocast, on random tokens
with 15% of positions masked. After ``--warmup`` steps (Triton compilation,
allocator warm-up) it times ``--steps`` steps and reports the median s/step,
tokens/s (batch * length / s) and the peak memory (GPU: peak allocated by torch;
CPU: peak RSS of the process). With ``--peer caduceus`` the same step (same
architecture: our config written as a Caduceus config by genomamba.convert, same tokens
in Caduceus's vocabulary, same loss and optimizer) is timed in the same process with
Caduceus's Hugging Face model code over mamba-ssm's and causal-conv1d's CUDA kernels,
built here by benchmarks/peers.py, and the table gets the ratios.

    python benchmarks/bench_model.py                          # ps, L 131072, batch 1, GPU
    python benchmarks/bench_model.py --peer caduceus --batch 4
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

from genomamba.data.vocab import MASK
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("ps", "ph"), default="ps", help="RC mode (default ps)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--length", type=int, default=131_072)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--n-layer", type=int, default=16)
    p.add_argument("--peer", choices=("caduceus",), help="also time Caduceus's own model code, side by side (GPU)")
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


def our_config(args):
    return GenoMambaConfig(d_model=args.d_model, n_layer=args.n_layer, rc_mode=args.mode, scan_backend=args.backend,
                           gradient_checkpointing=args.checkpointing)


def run(args, peer=False):
    """Time the step for our model, or (``peer``) for Caduceus's code at the same architecture."""
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    config = our_config(args)
    inputs, labels = make_batch(args.batch, args.length, device, args.seed)
    if peer:
        from peers import load_caduceus

        from genomamba.convert.caduceus import CADUCEUS_ROW, config_to_caduceus

        CaduceusConfig, CaduceusForMaskedLM = load_caduceus()
        fields = config_to_caduceus(config)
        fields.pop("architectures"), fields.pop("auto_map"), fields.pop("model_type")
        model = CaduceusForMaskedLM(CaduceusConfig(**fields)).to(device).train()
        inputs = torch.tensor(CADUCEUS_ROW, device=device)[inputs]
        labels = torch.where(labels >= 0, torch.tensor(CADUCEUS_ROW, device=device)[labels.clamp(min=0)], labels)
        name, forward = "Caduceus", lambda ids: model(input_ids=ids).logits
    else:
        model = GenoMambaForMaskedLM(config).to(device).train()
        name, forward = "genomamba", model
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01,
                            fused=device.type == "cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        loss = mlm_loss(forward, inputs, labels, not args.no_autocast)
        loss.backward()
        opt.step()
        return loss

    if device.type == "cuda":
        torch.cuda.empty_cache()
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
    if args.profile and not peer:
        profile_step(forward, opt, inputs, labels, device, not args.no_autocast)
    result = {
        "model": name, "mode": args.mode, "batch": args.batch, "length": args.length, "d_model": args.d_model,
        "n_layer": args.n_layer, "checkpointing": args.checkpointing, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "backend": args.backend, "autocast_bf16": not args.no_autocast,
        "parameters": params,
        "first_step_s": times[0], "s_per_step": s_step, "s_per_step_min": min(timed),
        "s_per_step_max": max(timed), "tokens_per_s": args.batch * args.length / s_step,
        "peak_gib": peak_gib(device), "peak_kind": "allocated" if device.type == "cuda" else "process RSS",
        "loss_first": losses[0], "loss_last": losses[-1],
    }
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def mlm_loss(forward, inputs, labels, autocast):
    """The step's forward: masked-LM cross-entropy, under bf16 autocast unless disabled."""
    with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = forward(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


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


def report(r, peer=None):
    print(f"{r['model']}-{r['mode']}: {r['parameters']:,} parameters, batch {r['batch']}, L {r['length']:,}, "
          f"d_model {r['d_model']}, {r['n_layer']} layers, checkpointing {'on' if r['checkpointing'] else 'off'}, "
          f"{'bf16 autocast' if r['autocast_bf16'] else 'fp32'}, scan backend {r['backend']}, "
          f"{r['device_name']}, {time.strftime('%Y-%m-%d')}")
    peers = [peer] if peer and not peer.get("out_of_memory") else []
    for x in [r] + peers:
        print(f"{x['model']}: first step {x['first_step_s']:.3f} s; timed steps {x['s_per_step_min']:.3f} .. "
              f"{x['s_per_step_max']:.3f} s; loss {x['loss_first']:.3f} -> {x['loss_last']:.3f}; "
              f"{x['parameters']:,} parameters")
    print()
    print(f"{'':24s} {'s/step':>10s} {'tokens/s':>12s} {'peak GiB':>10s}")
    for x in [r] + peers:
        print(f"{x['model'] + '-' + x['mode']:24s} {x['s_per_step']:10.3f} {x['tokens_per_s']:12,.0f} "
              f"{x['peak_gib']:10.2f}" + ("" if x["peak_kind"] == "allocated" else "  (process RSS)"))
    if peer and peer.get("out_of_memory"):
        print(f"{'Caduceus-' + peer['mode']:24s} {'out of GPU memory':>34s}")
    elif peer:
        print(f"-> {peer['s_per_step'] / r['s_per_step']:.2f}x Caduceus's speed, "
              f"{r['peak_gib'] / peer['peak_gib']:.2f}x its memory (same process, same GPU)")


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    peer = None
    if args.peer:
        try:
            peer = run(args, peer=True)
        except torch.OutOfMemoryError as exc:
            print(f"Caduceus: out of GPU memory at batch {args.batch}, L {args.length:,}: {str(exc).splitlines()[0]}")
            peer = {"model": "Caduceus", "mode": args.mode, "out_of_memory": True}
    report(result, peer)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(ours=result, peer=peer) if peer else result, f, indent=2)


if __name__ == "__main__":
    main()
