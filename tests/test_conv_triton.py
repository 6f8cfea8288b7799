"""BiMamba's depthwise convolutions + SiLU (Triton kernels) against a float64 reference.

Without a GPU the kernels run under TRITON_INTERPRET=1 (see conftest.py) with tiny
tiles, so ragged channel and time tiles, both halos and several tiles are exercised."""

import pytest
import torch
import torch.nn.functional as F

from genomamba.ops.conv_ref import conv_silu_ref as reference
from genomamba.ops.conv_triton import conv_silu_backward, conv_silu_forward

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def test_reference_is_flip_causal_flip():
    """The reference's anti-causal half is flip -> causal conv -> flip with the same kernel."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 11, generator=g, dtype=torch.float64)
    weight = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    bias = torch.randn(2, 3, generator=g, dtype=torch.float64)
    u = reference(x, weight, bias)
    causal = F.conv1d(F.pad(x.flip(-1), (3, 0)), weight[1][:, None], bias[1], groups=3).flip(-1)
    torch.testing.assert_close(u[1], F.silu(causal), rtol=0, atol=1e-12)
    torch.testing.assert_close(u[0], F.silu(F.conv1d(F.pad(x, (3, 0)), weight[0][:, None], bias[0], groups=3)),
                               rtol=0, atol=1e-12)


def rel(a, b):
    return ((a.double() - b).norm() / b.norm().clamp_min(1e-30)).item()


CASES = [  # n, E, L, K
    (1, 2, 1, 4),
    (2, 3, 5, 4),
    (3, 5, 19, 4),
    (2, 4, 16, 3),
    (1, 3, 9, 1),
    (2, 2, 7, 2),
]


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("n,E,L,K", CASES)
def test_conv_silu_matches_float64_reference(n, E, L, K, with_bias, dtype, tol):
    g = torch.Generator().manual_seed(hash((n, E, L, K, with_bias)) % 2**31)
    # x as the model passes it: the first half of an (n, 2E, L) in_proj output
    xz = torch.randn(n, 2 * E, L, generator=g).to(DEVICE, dtype)
    x = xz[:, :E]
    weight = torch.randn(2, E, K, generator=g).to(DEVICE)
    bias = torch.randn(2, E, generator=g).to(DEVICE) if with_bias else None

    x64 = x.double().requires_grad_()
    w64 = weight.double().requires_grad_()
    b64 = bias.double().requires_grad_() if with_bias else None
    ref = reference(x64, w64, b64)

    u = conv_silu_forward(x, weight, bias)
    assert u.shape == (2, n, E, L) and u.dtype == dtype
    assert rel(u, ref) <= tol

    du = torch.randn(2, n, E, L, generator=g).to(DEVICE, dtype)
    grads = torch.autograd.grad(ref, [x64, w64] + ([b64] if with_bias else []), du.double())
    dxz = torch.full_like(xz, float("nan"))
    dweight, dbias = conv_silu_backward(x, weight, bias, du, dxz[:, :E])
    assert torch.isnan(dxz[:, E:]).all(), "wrote outside dx"
    assert rel(dxz[:, :E], grads[0]) <= tol
    assert rel(dweight, grads[1]) <= tol
    if with_bias:
        assert rel(dbias, grads[2]) <= tol
    else:
        assert dbias is None


def test_directions_are_causal_and_anticausal():
    torch.manual_seed(0)
    n, E, L, K = 1, 2, 12, 4
    x = torch.randn(n, E, L, device=DEVICE)
    weight, bias = torch.randn(2, E, K, device=DEVICE), torch.randn(2, E, device=DEVICE)
    u = conv_silu_forward(x, weight, bias)
    t = 6
    x2 = x.clone()
    x2[..., t] += 1.0
    u2 = conv_silu_forward(x2, weight, bias)
    changed = (u2 != u).any(dim=(1, 2))  # (2, L)
    # causal: outputs t .. t + K - 1 see x[t]; anti-causal: outputs t - K + 1 .. t
    assert changed[0].nonzero().flatten().tolist() == list(range(t, t + K))
    assert changed[1].nonzero().flatten().tolist() == list(range(t - K + 1, t + 1))


def test_rejects_bad_shapes():
    x = torch.randn(1, 3, 8, device=DEVICE)
    with pytest.raises(ValueError, match="weight must be"):
        conv_silu_forward(x, torch.randn(1, 3, 4, device=DEVICE), None)
    with pytest.raises(ValueError, match="unit stride"):
        conv_silu_forward(x.transpose(1, 2), torch.randn(2, 8, 4, device=DEVICE), None)
