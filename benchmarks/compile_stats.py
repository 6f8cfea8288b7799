"""Compile the selective-scan kernels for the H100 (sm_90) without a GPU, and print what
the compiler made of them: registers, spill stack, layout conversions, SASS op counts.

    python benchmarks/compile_stats.py [--which bwd,fwd] [--dump DIR] [--maxnreg N]

Uses whichever Triton is importable; the lent H100 runs Triton 3.6, whose layout choices
differ from later versions, so check layouts with a Triton 3.6 venv (needs no torch):
    pip download triton==3.6.0 --no-deps -d /tmp/tw && python3 -m venv /tmp/tv36 &&
    /tmp/tv36/bin/pip install /tmp/tw/triton-3.6.0-*.whl &&
    /tmp/tv36/bin/python benchmarks/compile_stats.py
Argument values are those of a backward at (4, 512, 131072, 16) bf16 with the default
launch settings; Triton's specialisation (ints equal to 1, multiples of 16) is mimicked.
``--score WINDOWS,LENGTH`` compiles instead the scoring forward (``_inference_forward``'s
layout, the default PS model: 2 x WINDOWS rows of LENGTH positions, 512 channels) with and
without prefetch and LANE_ROWS: e.g. ``--score 256,1023`` for 1k windows, whose odd rows the
backward's stand-in values (all multiples of 16) do not show; ``--block-t`` sets its chunk
length. ``--dump DIR`` writes each kernel's TTGIR, PTX and SASS.
"""

import argparse
import collections
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

# the kernel module by its path: it needs only Triton, so a bare Triton venv (no torch) runs
# this; GENOMAMBA_SCAN_KERNELS names another copy (e.g. an earlier commit's, to compare)
KERNELS = os.environ.get("GENOMAMBA_SCAN_KERNELS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "genomamba", "ops", "kernels", "scan.py")
_spec = importlib.util.spec_from_file_location("scan_kernels", KERNELS)
kernels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kernels)

BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
INT32_ARGS = {"flags_ptr", "counter_ptr"}
BF16_ARGS = {"u_ptr", "delta_ptr", "z_ptr", "B_ptr", "C_ptr", "out_ptr", "dout_ptr", "du_ptr", "ddelta_ptr", "dz_ptr"}
UNSPECIALISED = {"one", "direction"}


def int_args(batch=4, dim=512, length=131072, nstate=16, seg_len=128, block_d=16):
    rows = batch * dim
    return dict(batch=batch, dim=dim, L=length, L_valid=length, n_seg=length // seg_len, n_rows=rows, dim_per_group=dim,
                s_u_dir=rows * length, s_u_b=dim * length, s_u_d=length, s_z_dir=rows * length,
                s_z_b=dim * length, s_z_d=length, s_A_dir=dim * nstate, s_B_dir=batch * nstate * length,
                s_B_b=nstate * length, s_B_g=nstate * length, s_B_n=length, s_B_t=1, s_D_dir=dim, direction=0,
                one=1, n_work=batch * dim // block_d * (length // seg_len), s_dz_dir=rows * length,
                s_dout_dir=rows * length, s_dB_n=length, s_dB_t=1)


def score_int_args(windows, length, dim=512, nstate=16, dt_rank=16):
    """The scoring forward's arguments: u, delta (2, n, E, L) and B, C (2, n, 1, N, L) views of
    (channels, n L) matrix products, z a (n, E, L) view of in_proj's, n = 2 x windows strands."""
    n = 2 * windows
    nl = n * length
    return dict(batch=n, dim=dim, L=length, L_valid=length, n_seg=1, n_rows=2 * n * dim, dim_per_group=dim,
                s_u_dir=dim * nl, s_u_b=length, s_u_d=nl, s_z_dir=0, s_z_b=length, s_z_d=nl, s_A_dir=dim * nstate,
                s_B_dir=(dt_rank + 2 * nstate) * nl, s_B_b=length, s_B_g=nstate * nl, s_B_n=nl, s_B_t=1, s_D_dir=dim,
                direction=0, one=1)


def compile_sm90(kernel, consts, ints, warps, maxnreg=None):
    sig, constexprs, attrs = {}, {}, {}
    for i, name in enumerate(kernel.arg_names):
        if name in consts:
            sig[name], constexprs[(i,)] = "constexpr", consts[name]
        elif name.endswith("_ptr"):
            sig[name] = "*bf16" if name in BF16_ARGS else "*i32" if name in INT32_ARGS else "*fp32"
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif ints[name] == 1 and name not in UNSPECIALISED:
            sig[name], constexprs[(i,)] = "constexpr", 1
        else:
            sig[name] = "i32"
            if ints[name] % 16 == 0 and name not in UNSPECIALISED:
                attrs[(i,)] = [["tt.divisibility", 16]]
    return triton.compile(ASTSource(kernel, sig, constexprs, attrs), target=GPUTarget("cuda", 90, 32),
                          options={"num_warps": warps, **({"maxnreg": maxnreg} if maxnreg else {})})


def _tool(name, cubin, *args):
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([os.path.join(BIN, name), *args, f.name], capture_output=True, text=True).stdout


def report(label, compiled, dump=None):
    usage = _tool("cuobjdump", compiled.asm["cubin"], "-res-usage")
    regs = re.search(r"REG:(\d+)", usage)
    stack = re.search(r"STACK:(\d+)", usage)
    sass = _tool("nvdisasm", compiled.asm["cubin"], "-c")
    ops = collections.Counter(m.group(1).split(".")[0] for m in
                              re.finditer(r"/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", sass))
    ttgir = compiled.asm["ttgir"]
    conversions = sum("convert_layout" in line for line in ttgir.splitlines() if not line.startswith("#loc"))
    top = ", ".join(f"{k} {v}" for k, v in ops.most_common(12))
    print(f"{label}: registers {regs and regs.group(1)}, spill stack {stack and stack.group(1)} B, "
          f"layout conversions {conversions}, SASS {sum(ops.values())} ({top})")
    if dump:
        os.makedirs(dump, exist_ok=True)
        for kind in ("ttgir", "ptx"):
            with open(os.path.join(dump, f"{label.replace(' ', '_')}.{kind}"), "w") as f:
                f.write(compiled.asm[kind])
        with open(os.path.join(dump, f"{label.replace(' ', '_')}.sass"), "w") as f:
            f.write(sass)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--which", default="bwd,fwd")
    ap.add_argument("--dump", help="write each kernel's TTGIR, PTX and SASS here")
    ap.add_argument("--maxnreg", type=int, help="register cap per thread (the BWD_MAXNREG / FWD_MAXNREG tuning fields)")
    ap.add_argument("--score", help="WINDOWS,LENGTH: the scoring forward instead (see above)")
    ap.add_argument("--block-t", type=int, default=8, help="the scoring forward's chunk length (BLOCK_T; default 8)")
    args = ap.parse_args()
    print(f"Triton {triton.__version__}, sm_90")
    base = dict(NSTATE=16, NSTATE_P2=16, SEG_LEN=128, REV=0, HAS_D=True, HAS_Z=True, HAS_BIAS=True,
                SOFTPLUS=int(os.environ.get("SOFTPLUS", "2")))
    which = args.which.split(",")
    if args.score:
        windows, length = (int(v) for v in args.score.split(","))
        seg = triton.next_power_of_2(length)  # one segment: the rows alone fill the GPU
        for lane_rows in (False, True):
            for prefetch in (True, False):
                consts = dict(base, SEG_LEN=seg, BLOCK_D=32, BLOCK_T=args.block_t, PREFETCH=prefetch, ADD_OUT=1,
                              SUMMARY=False, LANE_ROWS=lane_rows)
                compiled = compile_sm90(kernels._scan_fwd_kernel, consts, score_int_args(windows, length), 1,
                                        args.maxnreg)
                report(f"scoring forward {windows}x{length} block_t {args.block_t} prefetch {int(prefetch)} "
                       f"lane rows {int(lane_rows)}", compiled, args.dump)
        return
    if "bwd" in which:
        consts = dict(base, BLOCK_D=16, BLOCK_T=4, LANE_SHUFFLE=True, HAS_DLAST=False)
        report("backward", compile_sm90(kernels._scan_bwd_kernel, consts, int_args(), 1, args.maxnreg), args.dump)
    if "fwd" in which:
        consts = dict(base, BLOCK_D=32, BLOCK_T=8, PREFETCH=False, ADD_OUT=0, LANE_ROWS=False)
        for summary in (False, True):
            compiled = compile_sm90(kernels._scan_fwd_kernel, dict(consts, SUMMARY=summary), int_args(block_d=32), 1,
                                    args.maxnreg)
            report("forward summary" if summary else "forward main", compiled, args.dump)


if __name__ == "__main__":
    main()
