"""What the compiler makes of the scan's kernels, compiled for sm_90 in a subprocess (no GPU
needed, and the tests' interpreter setting kept out of it).

- A register pick by masked sum must fold to a plain register read, with no add left over.
  Triton 3.6, which the lent GPUs run, turned a literal -0.0 into +0.0 there (one add per
  pick); Triton 3.9 keeps it.
- The forward and backward kernels compile for sm_90 (which CI, with no GPU, otherwise never
  does), also when every int argument is 1 (a one-base row, a single channel or sequence).
  Triton passes such an argument as a Python int, not a tensor, so an int method on it
  (``L_valid.to(...)``) fails to compile; the CPU interpreter never shows this."""

import os
import subprocess
import sys

import pytest

PROGRAM = r"""
import sys
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from genomamba.ops.kernels import scan as kernels

@triton.jit
def pick(x_ptr, out_ptr, J: tl.constexpr, T: tl.constexpr, D: tl.constexpr):
    offs_t = tl.arange(0, T)
    offs_d = tl.arange(0, D)
    x = tl.load(x_ptr + offs_t[:, None, None] * D + offs_d[None, None, :])  # (T, 1, D), time in the thread
    tl.store(out_ptr + offs_d[None, :], kernels._step(x, offs_t, J))

sig = {"x_ptr": "*fp32", "out_ptr": "*fp32", "J": "constexpr", "T": "constexpr", "D": "constexpr"}
src = ASTSource(pick, sig, {(2,): int(sys.argv[1]), (3,): 8, (4,): 32})
print(triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 1}).asm["llir"])
"""


@pytest.mark.parametrize("j", [0, 5, 7])
def test_a_step_pick_compiles_to_a_register_read_without_an_add(j, tmp_path):
    program = tmp_path / "pick.py"  # Triton reads a kernel's source from its file
    program.write_text(PROGRAM)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, str(program), str(j)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "define" in run.stdout  # the kernel's IR came back
    # the masked sum's other terms must be -0.0 (x + -0.0 folds away); a +0.0 there leaves
    # "fadd x, 0.0", which is no identity (it turns -0.0 into +0.0), one add per pick
    assert "fadd" not in run.stdout


SPECIALISED = r"""
import sys
sys.path.insert(0, sys.argv[3])
import compile_stats  # benchmarks/: compiles for sm_90 with Triton's specialisation of ints equal to 1
from genomamba.ops.kernels import scan as kernels

def compile_with_ones(kernel, consts, ones):
    ints = {name: 1 if ones else 7 for name in kernel.arg_names if name not in consts and not name.endswith("_ptr")}
    compile_stats.compile_sm90(kernel, consts, ints, 1)

base = dict(NSTATE=16, NSTATE_P2=16, SEG_LEN=32, HAS_D=True, HAS_Z=True, HAS_BIAS=True, SOFTPLUS=2)
ones = sys.argv[2] == "ones"
if sys.argv[1] == "forward":
    for rev, prefetch, lane_rows, summary in ((0, True, True, False), (1, False, False, False), (1, False, True, True)):
        compile_with_ones(kernels._scan_fwd_kernel, dict(base, BLOCK_D=32, BLOCK_T=8, REV=rev, PREFETCH=prefetch,
                                                         LANE_ROWS=lane_rows, SUMMARY=summary, ADD_OUT=1), ones)
else:
    for rev in (0, 1):
        compile_with_ones(kernels._scan_bwd_kernel, dict(base, BLOCK_D=16, BLOCK_T=4, REV=rev, LANE_SHUFFLE=True,
                                                         HAS_DLAST=False), ones)
print("compiled")
"""


@pytest.mark.parametrize("ints", ["ones", "general"])
@pytest.mark.parametrize("kernel", ["forward", "backward"])
def test_the_kernels_compile_for_sm90_also_when_every_int_argument_is_one(kernel, ints, tmp_path):
    program = tmp_path / "ones.py"
    program.write_text(SPECIALISED)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    bench = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")
    run = subprocess.run([sys.executable, str(program), kernel, ints, bench], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().endswith("compiled")
