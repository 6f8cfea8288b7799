#!/usr/bin/env python3
"""Compare the results/ trees of two runs of the same targets (local vs SLURM).

    python tests/slurm/compare_outputs.py LOCAL_RESULTS SLURM_RESULTS

* Both trees must hold the same files (logs excepted).
* JSON and JSON lines: equal after dropping volatile keys (times, hosts, paths, PIDs,
  throughput, peak memory);
  floats equal to a relative 1e-5 (CPU training with the same seed and thread count is
  expected to reproduce; the tolerance only absorbs printing round-off).
* HDF5: every dataset equal (exactly) and every attribute equal; file bytes may differ.
* safetensors: every tensor equal to a relative 1e-5; torch .pt checkpoints: loaded and
  compared like JSON, tensors like safetensors.
* Images (.png/.pdf/.svg) and logs: existence only. Anything else: identical bytes.
Prints one line per file and exits 1 on any difference.
"""
import hashlib
import json
import math
import re
import sys
from pathlib import Path

# a JSON key is volatile (differs between two runs of the same job) when one of its
# _-separated words is one of these, or it ends in _per_s / _per_sec
VOLATILE_WORDS = {
    "time", "times", "timestamp", "date", "elapsed", "duration", "seconds", "wall",
    "host", "hostname", "node", "pid", "path", "dir", "cwd", "user", "throughput",
    "speed", "started", "finished", "created", "git", "mem", "memory",
}


def volatile(key):
    k = str(key).lower()
    return bool(VOLATILE_WORDS & set(re.split(r"[^a-z0-9]+", k))) or k.endswith(("_per_s", "_per_sec", "_per_second"))


SKIP_DIRS = {"logs", "log"}
EXISTS_ONLY = {".png", ".pdf", ".svg", ".log", ".txt.log"}


def jdiff(a, b, where, out, ignored):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if volatile(k):
                ignored.add(f"{where}.{k}".lstrip("."))
                continue
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'slurm' if k in b else 'local'}")
            else:
                jdiff(a[k], b[k], f"{where}.{k}", out, ignored)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            jdiff(x, y, f"{where}[{i}]", out, ignored)
    elif isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float))) or not (
            math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-8) or (math.isnan(a) and math.isnan(b))
        ):
            out.append(f"{where}: {a!r} != {b!r}")
    elif a != b:
        out.append(f"{where}: {a!r} != {b!r}")


def cmp_json(a, b):
    out, ignored = [], set()
    jdiff(json.loads(a.read_text()), json.loads(b.read_text()), "", out, ignored)
    note = f" (ignored volatile: {', '.join(sorted(ignored))})" if ignored else ""
    return out, note


def cmp_jsonl(a, b):
    out, ignored = [], set()
    la, lb = a.read_text().splitlines(), b.read_text().splitlines()
    if len(la) != len(lb):
        out.append(f"{len(la)} lines != {len(lb)} lines")
    for i, (x, y) in enumerate(zip(la, lb)):
        jdiff(json.loads(x), json.loads(y), f"line{i + 1}", out, ignored)
    ignored = {re.sub(r"^line\d+\.", "", k) for k in ignored}
    note = f" ({len(la)} lines; ignored volatile: {', '.join(sorted(ignored))})" if ignored else f" ({len(la)} lines)"
    return out, note


def cmp_torch(a, b):
    import torch

    worst = [0.0]

    def plain(x):  # tensors -> comparable form, the rest unchanged
        if torch.is_tensor(x):
            return x
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    out, ignored = [], set()

    def walk(x, y, where):
        if torch.is_tensor(x) or torch.is_tensor(y):
            if not (torch.is_tensor(x) and torch.is_tensor(y)) or x.shape != y.shape:
                out.append(f"{where}: tensor shapes differ")
            elif x.is_floating_point():
                d = (x.double() - y.double()).abs().max().item() if x.numel() else 0.0
                worst[0] = max(worst[0], d)
                if not torch.allclose(x.double(), y.double(), rtol=1e-5, atol=1e-7):
                    out.append(f"{where}: max |diff| {d:.3g}")
            elif not torch.equal(x, y):
                out.append(f"{where}: tensors differ")
        elif type(x).__module__ == "numpy" or type(y).__module__ == "numpy":
            import numpy as np

            if not np.array_equal(np.asarray(x), np.asarray(y)):
                out.append(f"{where}: arrays differ")
        elif isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                if volatile(k):
                    ignored.add(str(k))
                elif k not in x or k not in y:
                    out.append(f"{where}.{k}: only in {'slurm' if k in y else 'local'}")
                else:
                    walk(x[k], y[k], f"{where}.{k}")
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{where}[{i}]")
        else:
            jdiff(x, y, where, out, ignored)

    load = lambda p: plain(torch.load(p, map_location="cpu", weights_only=False))
    walk(load(a), load(b), "")
    note = f" (max |diff| {worst[0]:.3g}" + (f"; ignored volatile: {', '.join(sorted(ignored))})" if ignored else ")")
    return out, note


def cmp_h5(a, b):
    import h5py
    import numpy as np

    try:
        import hdf5plugin  # noqa: F401  (bitshuffle/LZ4 filters of the token shards)
    except ImportError:
        pass

    out = []
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names_a, names_b = [], []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        if sorted(names_a) != sorted(names_b):
            return [f"objects differ: {sorted(set(names_a) ^ set(names_b))}"], ""
        n = 0
        for name in ["/"] + names_a:
            oa, ob = fa[name], fb[name]
            if dict(oa.attrs.items()).keys() != dict(ob.attrs.items()).keys():
                out.append(f"{name}: attribute names differ")
            for k in oa.attrs:
                if k in ob.attrs and not np.array_equal(np.asarray(oa.attrs[k]), np.asarray(ob.attrs[k])):
                    out.append(f"{name}.attrs[{k}] differs")
            if isinstance(oa, h5py.Dataset):
                n += 1
                if oa.shape != ob.shape or oa.dtype != ob.dtype or not np.array_equal(oa[()], ob[()]):
                    out.append(f"{name}: dataset differs ({oa.shape} {oa.dtype} vs {ob.shape} {ob.dtype})")
    return out, f" ({n} datasets)"


def cmp_safetensors(a, b):
    import torch
    from safetensors.torch import load_file

    ta, tb = load_file(str(a)), load_file(str(b))
    if ta.keys() != tb.keys():
        return [f"tensor names differ: {sorted(set(ta) ^ set(tb))}"], ""
    out, worst = [], 0.0
    for k in ta:
        x, y = ta[k].double(), tb[k].double()
        if x.shape != y.shape:
            out.append(f"{k}: shape {tuple(x.shape)} != {tuple(y.shape)}")
            continue
        d = (x - y).abs().max().item() if x.numel() else 0.0
        worst = max(worst, d)
        if not torch.allclose(x, y, rtol=1e-5, atol=1e-7):
            out.append(f"{k}: max |diff| {d:.3g}")
    return out, f" ({len(ta)} tensors, max |diff| {worst:.3g})"


def main():
    la, lb = Path(sys.argv[1]), Path(sys.argv[2])

    def files(root):
        return {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not (SKIP_DIRS & set(p.relative_to(root).parts[:-1]))
        }

    fa, fb = files(la), files(lb)
    bad = 0
    for rel in sorted(fa ^ fb):
        print(f"  DIFF  {rel}: only in {'local' if rel in fa else 'slurm'} run")
        bad += 1
    for rel in sorted(fa & fb):
        a, b = la / rel, lb / rel
        suf = a.suffix.lower()
        try:
            if suf in EXISTS_ONLY:
                diffs, note = [], " (exists)"
            elif suf == ".json":
                diffs, note = cmp_json(a, b)
            elif suf == ".jsonl":
                diffs, note = cmp_jsonl(a, b)
            elif suf in (".pt", ".pth", ".ckpt"):
                diffs, note = cmp_torch(a, b)
            elif suf in (".h5", ".hdf5"):
                diffs, note = cmp_h5(a, b)
            elif suf == ".safetensors":
                diffs, note = cmp_safetensors(a, b)
            else:
                ha, hb = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b))
                diffs, note = ([] if ha == hb else ["bytes differ"]), " (bytes)"
        except Exception as e:  # unreadable output is a failure, not a crash
            diffs, note = [f"cannot compare: {type(e).__name__}: {e}"], ""
        if diffs:
            bad += 1
            print(f"  DIFF  {rel}{note}")
            for d in diffs[:10]:
                print(f"          {d}")
            if len(diffs) > 10:
                print(f"          ... {len(diffs) - 10} more")
        else:
            print(f"  same  {rel}{note}")
    if not fa:
        print("  (no outputs in the local run)")
        bad += 1
    print(f"compare: {len(fa & fb)} files compared, {bad} differ")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
