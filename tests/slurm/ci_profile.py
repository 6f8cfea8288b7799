#!/usr/bin/env python3
"""Write a copy of profiles/slurm fitted to the one-node CPU test cluster.

    python tests/slurm/ci_profile.py profiles/slurm OUTDIR --partition debug --cpus 2 --mem-mb 22000

Only what a one-node CPU cluster without accounting needs is changed, everywhere a
resource can be set (default-resources, set-resources, set-threads):
  * slurm_partition -> the test partition;
  * slurm_account, qos, reservation, constraint, clusters: dropped (no slurmdbd, one cluster);
  * GPU requests dropped: gres/gpu/gpus/gpu_model/tasks_per_gpu/cpus_per_gpu/mem_mb_per_gpu,
    and --gres/--gpus*/--constraint/--qos/--account/--reservation inside slurm_extra;
  * nodes -> 1, and cpus_per_task / tasks / threads / mem_mb clamped to the node's size.
Everything else (executor, jobs, runtimes, retries, latency-wait, ...) stays as written.
The changes are printed, so the CI log shows exactly how the test differs from the profile.
"""
import argparse
import re
import shlex
import sys
from pathlib import Path

import yaml

DROP = {
    "slurm_account", "account", "qos", "slurm_qos", "reservation", "slurm_reservation",
    "constraint", "slurm_constraint", "clusters", "cluster", "slurm_cluster",
    "gres", "gpu", "gpus", "gpu_model", "gpu_manufacturer", "tasks_per_gpu",
    "cpus_per_gpu", "mem_mb_per_gpu", "gpus_per_node", "gpus_per_task",
}
DROP_EXTRA = re.compile(
    r"^--?(gres|gpus|gpus-per-node|gpus-per-task|gpu-bind|G|constraint|C|qos|q|account|A|"
    r"reservation|clusters|M|partition|p|nodes|N)(=|$)"
)


def parse_kv(items):
    """Profile resource lists ('k=v' strings) or mappings -> dict (keeps order)."""
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out = {}
    for it in items:
        k, _, v = str(it).partition("=")
        out[k.strip()] = v.strip()
    return out


def as_int(v):
    try:
        return int(str(v).strip().strip("'\""))
    except ValueError:
        return None  # an expression: leave it alone


def fit(res, where, a, changes, set_partition):
    res = dict(res)
    for k in list(res):
        if k in DROP:
            changes.append(f"{where}: drop {k}={res.pop(k)}")
    if "slurm_extra" in res:
        old = str(res["slurm_extra"]).strip().strip("'\"")
        toks, keep, skip = shlex.split(old), [], False
        for i, t in enumerate(toks):
            if skip:
                skip = False
                continue
            m = DROP_EXTRA.match(t)
            if m:
                skip = m.group(2) == "" and i + 1 < len(toks) and not toks[i + 1].startswith("-")
                continue
            keep.append(t)
        new = " ".join(keep)
        if new != old:
            changes.append(f"{where}: slurm_extra {old!r} -> {new!r}")
            if new:
                res["slurm_extra"] = f"'{new}'"
            else:
                del res["slurm_extra"]
    if set_partition or "slurm_partition" in res:
        if res.get("slurm_partition") != a.partition:
            changes.append(f"{where}: slurm_partition {res.get('slurm_partition')} -> {a.partition}")
        res["slurm_partition"] = a.partition
    for k, cap in (("cpus_per_task", a.cpus), ("tasks", a.cpus), ("ntasks", a.cpus),
                   ("threads", a.cpus), ("nodes", 1), ("mem_mb", a.mem_mb), ("mem_mib", a.mem_mb)):
        n = as_int(res.get(k)) if k in res else None
        if n is not None and n > cap:
            changes.append(f"{where}: {k} {n} -> {cap}")
            res[k] = cap
    for k in ("mem", "mem_gb"):
        if k in res and "mem_mb" not in res:
            changes.append(f"{where}: {k}={res[k]} -> mem_mb={a.mem_mb // 2}")
            del res[k]
            res["mem_mb"] = a.mem_mb // 2
    return res


def to_list(d):
    return [f"{k}={v}" for k, v in d.items()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("profile", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--partition", default="debug")
    ap.add_argument("--cpus", type=int, required=True)
    ap.add_argument("--mem-mb", type=int, required=True)
    a = ap.parse_args()

    src = a.profile / "config.yaml" if a.profile.is_dir() else a.profile
    cfg = yaml.safe_load(src.read_text()) or {}
    if cfg.get("executor") not in ("slurm", None):
        sys.exit(f"ci_profile: {src} uses executor {cfg.get('executor')!r}, expected 'slurm'")
    changes = []
    cfg["default-resources"] = to_list(
        fit(parse_kv(cfg.get("default-resources")), "default-resources", a, changes, True))
    if cfg.get("set-resources"):
        sr = {}
        for rule, res in cfg["set-resources"].items():
            if isinstance(res, dict):
                sr[rule] = fit(res, f"set-resources.{rule}", a, changes, False)
            else:  # 'rule:key=value' list form
                sr[rule] = res
        cfg["set-resources"] = sr
    if isinstance(cfg.get("set-threads"), dict):
        for rule, n in cfg["set-threads"].items():
            if as_int(n) is not None and as_int(n) > a.cpus:
                changes.append(f"set-threads.{rule}: {n} -> {a.cpus}")
                cfg["set-threads"][rule] = a.cpus
    if as_int(cfg.get("cores")) and as_int(cfg.get("cores")) > a.cpus:
        changes.append(f"cores: {cfg['cores']} -> {a.cpus}")
        cfg["cores"] = a.cpus
    for k in ("slurm-account", "slurm-qos", "slurm-reservation"):
        if k in cfg:
            changes.append(f"drop {k}: {cfg.pop(k)}")

    a.outdir.mkdir(parents=True, exist_ok=True)
    # other files of the profile (e.g. a partition file) come along unchanged
    if a.profile.is_dir():
        for f in a.profile.iterdir():
            if f.is_file() and f.name != "config.yaml":
                (a.outdir / f.name).write_bytes(f.read_bytes())
    (a.outdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    print(f"ci_profile: {src} -> {a.outdir / 'config.yaml'}; changes for the test cluster:")
    for c in changes or ["(none)"]:
        print(f"  {c}")


if __name__ == "__main__":
    main()
