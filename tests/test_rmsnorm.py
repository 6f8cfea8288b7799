"""RMSNorm: the Triton kernels (interpreter on CPU) against a float64 PyTorch reference."""

import pytest
import torch

from genomamba.ops.rmsnorm import rms_norm
from genomamba.ops.rmsnorm_ref import rms_norm_ref

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def rel(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("shape", [(1, 1, 16), (2, 5, 24), (37, 8), (3, 11, 64)])
def test_rmsnorm_triton_matches_float64(shape, dtype, tol):
    g = torch.Generator().manual_seed(sum(shape))
    x = (torch.randn(shape, generator=g) * 3).to(DEVICE, dtype)
    weight = (1 + 0.5 * torch.randn(shape[-1], generator=g)).to(DEVICE)
    dout = torch.randn(shape, generator=g).to(DEVICE)
    x64, w64 = x.double().requires_grad_(), weight.double().requires_grad_()
    ref = rms_norm_ref(x64, w64, 1e-5)
    dx_ref, dw_ref = torch.autograd.grad(ref, [x64, w64], dout.double())

    xt, wt = x.clone().requires_grad_(), weight.clone().requires_grad_()
    out = rms_norm(xt, wt, 1e-5, backend="triton")
    assert out.dtype == weight.dtype and out.shape == x.shape
    assert rel(out, ref) <= 1e-5  # fp32 arithmetic on exactly the input values
    out.backward(dout)
    assert xt.grad.dtype == dtype and rel(xt.grad, dx_ref) <= tol
    assert rel(wt.grad, dw_ref) <= 1e-5


def test_rmsnorm_keeps_only_its_input_and_row_scales():
    x = torch.randn(4, 9, 32, device=DEVICE, requires_grad=True)
    weight = torch.ones(32, device=DEVICE, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        rms_norm(x, weight, 1e-5, backend="triton")
    assert sorted(saved) == sorted([x.numel(), 32, 4 * 9])
