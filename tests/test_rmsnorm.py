"""RMSNorm: the Triton kernels (interpreter on CPU) against a float64 PyTorch reference."""

import pytest
import torch

import genomamba.ops.rmsnorm_triton as rmsnorm_triton
from genomamba.ops.backend import interpreting
from genomamba.ops.rmsnorm import add_rms_norm, rms_norm
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


def assert_same_rounded(a, b):
    """a == b exactly; but Triton's CPU interpreter rounds fp32 -> bf16 towards zero (numpy has
    no bfloat16), where the GPU and PyTorch round to nearest even: there, within one bf16 ulp."""
    if a.dtype == torch.bfloat16 and interpreting():
        torch.testing.assert_close(a.float(), b.float(), rtol=2 ** -7, atol=0)
    else:
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("x_dtype,r_dtype,out_dtype", [
    (torch.bfloat16, torch.float32, torch.bfloat16),  # a block under autocast: residual in fp32
    (torch.float32, torch.float32, torch.float32),
    (torch.bfloat16, torch.bfloat16, torch.float32),  # the sum rounded to bf16 before the norm
])
@pytest.mark.parametrize("shape", [(1, 1, 16), (2, 5, 24), (3, 11, 64)])
def test_add_rms_norm_is_one_kernel_for_inference_with_the_separate_steps_values(
        shape, x_dtype, r_dtype, out_dtype, monkeypatch):
    """Without autograd, the residual add and the norm run as one kernel; its sum and its
    normalised output must equal the separate add and RMSNorm kernel exactly (the norm of
    the sum as stored; see assert_same_rounded), and the float64 formula closely. Recording autograd, the separate
    steps run and give gradients."""
    g = torch.Generator().manual_seed(7 + sum(shape))
    x = (torch.randn(shape, generator=g) * 2).to(DEVICE, x_dtype)
    residual = (torch.randn(shape, generator=g) * 3).to(DEVICE, r_dtype)
    weight = (1 + 0.5 * torch.randn(shape[-1], generator=g)).to(DEVICE).requires_grad_()
    calls = []
    fused = rmsnorm_triton.add_rms_norm_triton
    monkeypatch.setattr(rmsnorm_triton, "add_rms_norm_triton", lambda *a: calls.append(1) or fused(*a))
    with torch.no_grad():
        total, normed = add_rms_norm(x, residual, weight, 1e-5, "triton", out_dtype)
        separate = x + residual
        expected = rms_norm(total, weight, 1e-5, "triton").to(out_dtype)  # the norm of the stored sum
    assert calls == [1]
    assert total.dtype == separate.dtype and normed.dtype == out_dtype and normed.shape == x.shape
    assert_same_rounded(total, separate)
    assert_same_rounded(normed, expected)
    ref = rms_norm_ref(total.double(), weight.detach().double(), 1e-5)
    assert rel(normed, ref) <= (1e-2 if out_dtype == torch.bfloat16 else 1e-5)

    xt = x.clone().requires_grad_()
    total, normed = add_rms_norm(xt, residual, weight, 1e-5, "triton", out_dtype)
    assert calls == [1] and normed.requires_grad
    normed.float().sum().backward()
    assert xt.grad is not None and weight.grad is not None and torch.isfinite(xt.grad).all()
