"""The fused BiMamba function (Triton backend) against the module path (torch backend).

Without a GPU the Triton kernels run under TRITON_INTERPRET=1 (conftest.py), which costs
about a second per program launched: sizes are kept small (d_inner 8, two sequences)."""

import pytest
import torch

from genomamba.model import BiMamba

from model_helpers import one_thread, perturb, tiny_config  # noqa: E402,F401

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def run(mixer, hidden, backend, dout, autocast=False):
    mixer.config.scan_backend = backend
    mixer.zero_grad(set_to_none=True)
    hidden = hidden.detach().clone().requires_grad_()
    with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=autocast):
        out = mixer(hidden)
    out.backward(dout)
    return out.detach().float(), hidden.grad, {n: p.grad for n, p in mixer.named_parameters()}


def rel(a, b):
    """Relative error; 0 when both are exactly zero (e.g. dA at L = 1)."""
    diff, ref = (a.double() - b.double()).norm().item(), b.double().norm().item()
    return diff / ref if ref else diff


def make(length, conv_bias=True, seed=0):
    torch.manual_seed(seed)
    mixer = BiMamba(tiny_config(d_model=4, d_state=4, conv_bias=conv_bias))
    perturb(mixer, seed=seed + 1, scale=0.2)
    mixer.to(DEVICE)
    g = torch.Generator().manual_seed(seed + 2)
    hidden = torch.randn(2, length, 4, generator=g).to(DEVICE)
    dout = torch.randn(2, length, 4, generator=g).to(DEVICE)
    return mixer, hidden, dout


@pytest.mark.parametrize("length,conv_bias", [(1, True), (7, False), (21, True)])
def test_fused_matches_module_path_fp32(length, conv_bias):
    mixer, hidden, dout = make(length, conv_bias, seed=length)
    out, dh, grads = run(mixer, hidden, "triton", dout)
    ref_out, ref_dh, ref_grads = run(mixer, hidden, "torch", dout)
    assert rel(out, ref_out) <= 1e-5
    assert rel(dh, ref_dh) <= 1e-5
    assert set(grads) == set(ref_grads)
    for name, g in ref_grads.items():
        assert grads[name] is not None and grads[name].dtype == g.dtype, name
        assert rel(grads[name], g) <= 1e-5, name


def test_fused_under_bf16_autocast_is_as_close_to_fp32_as_the_module_path():
    mixer, hidden, dout = make(12, seed=3)
    ref = run(mixer, hidden, "torch", dout)
    module = run(mixer, hidden, "torch", dout, autocast=True)
    fused = run(mixer, hidden, "triton", dout, autocast=True)
    assert fused[0].dtype == torch.float32 and fused[1].dtype == hidden.dtype
    for name, got, base, want in [("out", fused[0], module[0], ref[0]), ("dhidden", fused[1], module[1], ref[1])] + [
            (n, fused[2][n], module[2][n], g) for n, g in ref[2].items()]:
        assert got.dtype == want.dtype, name
        # bf16 rounding of activations: within 2e-2, or no worse than PyTorch autocast
        assert rel(got, want) <= max(2e-2, 2 * rel(base, want)), name


def saved_shapes(mixer, hidden, backend):
    shapes = []

    def pack(t):
        shapes.append((tuple(t.shape), t.numel() * t.element_size()))
        return t

    mixer.config.scan_backend = backend
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        mixer(hidden.detach().requires_grad_())
    return shapes


def test_fused_keeps_a_fraction_of_the_activations():
    """What the backward keeps: the module path holds x, z, both convolutions, u and delta
    (each (2, n, d_inner, L) or half of it); the fused function only h, x_dbl, y and the
    scan's segment states. Compared per added step (the weights are kept either way)."""
    growth = {}
    for backend in ("triton", "torch"):
        sizes = []
        for length in (16, 32):
            mixer, hidden, _ = make(length, seed=4)
            shapes = saved_shapes(mixer, hidden, backend)
            sizes.append(sum(b for _, b in shapes))
            stacked = (2, hidden.shape[0], mixer.config.d_inner, length)
            assert (stacked in [shape for shape, _ in shapes]) == (backend == "torch")  # u, delta
        growth[backend] = sizes[1] - sizes[0]
    assert growth["triton"] <= 0.35 * growth["torch"], growth


def test_inference_forward_keeps_nothing_and_matches(monkeypatch):
    """Under no_grad / inference_mode the fused function saves no scan state (and so runs
    the scan without the backward's segment cap), and gives the same output."""
    import genomamba.ops.bimamba_triton as fused

    saves = []
    real = fused.scan_forward

    def spy(*args, save, **kwargs):
        saves.append(save)
        return real(*args, save=save, **kwargs)

    monkeypatch.setattr(fused, "scan_forward", spy)
    mixer, hidden, dout = make(9, seed=5)
    mixer.config.scan_backend = "triton"
    trained = mixer(hidden.requires_grad_())
    with torch.no_grad():
        plain = mixer(hidden)
    with torch.inference_mode():
        inferred = mixer(hidden)
    assert saves == [True, False, False]
    assert rel(plain, trained.detach()) <= 1e-6 and rel(inferred, trained.detach()) <= 1e-6


@pytest.mark.parametrize("padded", [False, True], ids=["rows", "padded_rows"])
@pytest.mark.parametrize("length,autocast", [(1, False), (13, False), (10, True), (16, False)])
def test_inference_layout_matches_the_saving_path(length, autocast, padded, monkeypatch):
    """The no-grad forward lays activations out channels-outermost (one matrix product per
    projection), long windows in rows padded to a multiple of 16 (here forced at every
    length); it must compute what the saving path computes, in fp32 and under bf16."""
    import genomamba.ops.bimamba_triton as fused

    monkeypatch.setattr(fused, "PAD_ROWS_ABOVE", 0 if padded else 1 << 30)
    mixer, hidden, _ = make(length, seed=20 + length)
    mixer.config.scan_backend = "triton"
    with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=autocast):
        saved = mixer(hidden.detach().clone().requires_grad_()).detach().float()
        with torch.no_grad():
            inferred = mixer(hidden).float()
    assert inferred.shape == saved.shape
    assert rel(inferred, saved) <= (1e-2 if autocast else 1e-6)
    if not autocast:
        mixer.config.scan_backend = "torch"
        with torch.no_grad():
            assert rel(inferred, mixer(hidden)) <= 1e-5


def test_conv_writes_into_a_strided_output():
    from genomamba.ops.conv_triton import conv_silu_forward

    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 5, 11, generator=g).to(DEVICE)
    w = torch.randn(2, 5, 4, generator=g).to(DEVICE)
    b = torch.randn(2, 5, generator=g).to(DEVICE)
    plain = conv_silu_forward(x, w, b)
    out = torch.full((2, 5, 3, 11), float("nan"), device=DEVICE).transpose(1, 2)
    assert conv_silu_forward(x, w, b, out=out) is out
    assert torch.equal(out, plain)
    with pytest.raises(ValueError, match="unit stride"):
        conv_silu_forward(x, w, b, out=torch.empty(2, 3, 11, 5, device=DEVICE).transpose(-1, -2))


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16_autocast"])
def test_backbone_inference_adds_and_norms_in_one_kernel_with_the_same_logits(autocast, monkeypatch):
    """Without autograd, on the Triton backend, each block's residual add and RMSNorm (and
    the final norm's) are one kernel. The logits must equal those of the separate add and
    norm: exactly in fp32; under bf16 autocast within the interpreter's bf16 rounding (it
    rounds towards zero, the GPU to nearest even, where they are equal)."""
    import genomamba.model.model as model_module
    from genomamba.model import GenoMambaForMaskedLM
    from genomamba.ops.backend import interpreting
    from genomamba.ops.rmsnorm import rms_norm

    torch.manual_seed(3)
    model = GenoMambaForMaskedLM(tiny_config(d_model=4, d_state=4, n_layer=2, scan_backend="triton"))
    perturb(model, seed=4, scale=0.2)
    model.to(DEVICE).eval()
    ids = torch.randint(0, 5, (2, 9), generator=torch.Generator().manual_seed(5)).to(DEVICE)
    fused = model_module.add_rms_norm
    calls = []

    def counted(*args):
        calls.append(torch.is_grad_enabled())
        return fused(*args)

    def separate(x, residual, weight, eps, backend, out_dtype):
        s = x + residual
        return s, rms_norm(s, weight, eps, backend).to(out_dtype or weight.dtype)

    with torch.no_grad(), torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=autocast):
        monkeypatch.setattr(model_module, "add_rms_norm", counted)
        one_kernel = model(ids).float()
        monkeypatch.setattr(model_module, "add_rms_norm", separate)
        steps = model(ids).float()
    assert calls == [False] * 2  # block 2's and the final norm
    assert torch.isfinite(one_kernel).all()
    if autocast and interpreting():
        assert rel(one_kernel, steps) <= 2e-2
    else:
        torch.testing.assert_close(one_kernel, steps, rtol=0, atol=0)
