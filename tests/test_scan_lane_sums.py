"""The backward's channel reduction for dB/dC (genomamba/ops/kernels/scan.py, _add_lane_sums).

It sums a (time, state, channel) tile over channels by exchanging halves between
channel pairs, then adds the sums at their (time, state) places. Checked here on
fresh random tiles of several shapes, against torch, through a small test kernel:
on the CPU in Triton's interpreter (the portable exchange), on a GPU with warp
shuffles too. The kernels' own tests (test_scan.py) cover it inside the backward.
"""

import pytest
import torch
import triton
import triton.language as tl

from genomamba.ops.kernels.scan import _add_lane_sums
from genomamba.ops.backend import interpreting

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@triton.jit
def _lane_sums_kernel(x_ptr, out_ptr, t0, L, NSTATE: tl.constexpr, T: tl.constexpr, NP2: tl.constexpr,
                      D: tl.constexpr, LANE_SHUFFLE: tl.constexpr):
    t = tl.arange(0, T)[:, None, None]
    n = tl.arange(0, NP2)[None, :, None]
    d = tl.arange(0, D)[None, None, :]
    x = tl.load(x_ptr + (t * NP2 + n) * D + d)
    _add_lane_sums(out_ptr, x, t0, L, NSTATE, 1, NSTATE, LANE_SHUFFLE)


# (T, N_P2, D, NSTATE): several exchange rounds, a state count below its power of two,
# and a tile with fewer (time, state) pairs than channels (plain sum)
CASES = [(4, 16, 16, 16), (2, 4, 8, 3), (4, 8, 2, 8), (2, 2, 16, 2), (1, 1, 4, 1)]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("t0", [0, -1, 5])
def test_lane_sums_match_torch(case, t0):
    T, NP2, D, nstate = case
    L = 7
    x = torch.randn(T, NP2, D, device=DEVICE)
    out = torch.randn(L, nstate, device=DEVICE)
    expected = out.clone()
    sums = x.double().sum(2)[:, :nstate]
    for t in range(T):
        if 0 <= t0 + t < L:
            expected[t0 + t] += sums[t].to(expected.dtype)
    _lane_sums_kernel[(1,)](x, out, t0, L, NSTATE=nstate, T=T, NP2=NP2, D=D, LANE_SHUFFLE=not interpreting(),
                            num_warps=1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
