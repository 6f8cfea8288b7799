"""What the compiler makes of the scan's register picks: a pick by masked sum must fold to a
plain register read, with no add left over. Compiled to LLVM IR for sm_90 in a subprocess
(no GPU needed, and the tests' interpreter setting kept out of it). Triton 3.6, which the
lent GPUs run, turned a literal -0.0 into +0.0 there (one add per pick); Triton 3.9 keeps it."""

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
