"""Scan backends, bf16 autocast, activation checkpointing."""

import pytest
import torch
import torch.nn.functional as F

import genomamba.model.mixer as mixer_module
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM, GenoMambaForSequenceClassification


from model_helpers import one_thread, perturb, tiny_config  # noqa: E402,F401


def loss_and_grads(model, x):
    model.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x.reshape(-1))
    loss.backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("rc_mode,bidirectional", [("ps", True), ("none", False)])
def test_triton_backend_matches_torch_backend(rc_mode, bidirectional):
    """Triton kernels (interpreter on CPU, TRITON_INTERPRET=1 from conftest) against the
    PyTorch path, through the whole model: outputs and every parameter gradient."""
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # real kernels on a GPU
    model = GenoMambaForMaskedLM(tiny_config(d_model=8, n_layer=1, d_state=4, rc_mode=rc_mode,
                                             bidirectional=bidirectional)).train()
    perturb(model, seed=1, scale=0.1)
    model.to(device)
    x = torch.randint(0, 4, (1, 16), device=device)
    ref_logits, ref_grads = loss_and_grads(model.set_scan_backend("torch"), x)
    logits, grads = loss_and_grads(model.set_scan_backend("triton"), x)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-5)
    for name, g in ref_grads.items():
        torch.testing.assert_close(grads[name], g, rtol=1e-3, atol=1e-5, msg=lambda m: f"{name}: {m}")


def test_bf16_autocast_feeds_the_scan_bf16_activations_and_fp32_parameters(monkeypatch):
    seen = []
    real = mixer_module.selective_scan_bidirectional

    def spy(u, delta, A, B, C, D=None, z=None, delta_bias=None, **kw):
        seen.append({n: t.dtype for n, t in dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z,
                                                   delta_bias=delta_bias).items()})
        return real(u, delta, A, B, C, D, z, delta_bias, **kw)

    monkeypatch.setattr(mixer_module, "selective_scan_bidirectional", spy)
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(tiny_config(rc_mode="ps")).train()
    perturb(model, seed=2, scale=0.1)
    x = torch.randint(0, 4, (2, 24))
    ref_logits = model(x).detach()
    seen.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, 7), x.reshape(-1))
    loss.backward()
    assert len(seen) == model.config.n_layer
    for dtypes in seen:
        assert {dtypes[k] for k in ("u", "delta", "z", "B", "C")} == {torch.bfloat16}, dtypes
        assert {dtypes[k] for k in ("A", "D", "delta_bias")} == {torch.float32}, dtypes
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert (logits - ref_logits).abs().max() < 0.05 * ref_logits.abs().max()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("residual_in_fp32", [True, False])
def test_bf16_weights_with_fp32_residual(residual_in_fp32):
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(tiny_config(rc_mode="ph", residual_in_fp32=residual_in_fp32)).eval()
    ref = model(torch.tensor([[0, 1, 2, 3, 2, 1, 0, 3]])).detach()
    model = model.to(torch.bfloat16)
    out = model(torch.tensor([[0, 1, 2, 3, 2, 1, 0, 3]]))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


@pytest.mark.parametrize("rc_mode", ["ps", "none"])
def test_gradient_checkpointing_gives_the_same_gradients(rc_mode):
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(tiny_config(rc_mode=rc_mode)).train()
    perturb(model, seed=3, scale=0.1)
    x = torch.randint(0, 4, (2, 20))
    logits, grads = loss_and_grads(model, x)
    model.config.gradient_checkpointing = True
    calls = []
    layer = model.backbone.layers[0]
    forward = layer.forward
    layer.forward = lambda *args: calls.append(1) or forward(*args)  # (hooks skip recomputation)
    logits_ckpt, grads_ckpt = loss_and_grads(model, x)
    del layer.forward
    assert len(calls) == 2  # forward, then recomputed in backward
    torch.testing.assert_close(logits_ckpt, logits, rtol=0, atol=0)
    for name, g in grads.items():
        torch.testing.assert_close(grads_ckpt[name], g, rtol=1e-6, atol=1e-7, msg=lambda m: f"{name}: {m}")


def test_inputs_are_checked_and_uint8_tokens_work():
    model = GenoMambaForSequenceClassification(tiny_config(), num_labels=2).eval()
    x = torch.randint(0, 4, (2, 5))
    torch.testing.assert_close(model(x.to(torch.uint8)), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="integer tensor"):
        model(x.float())
    with pytest.raises(ValueError, match="integer tensor"):
        model(x[0])
    with pytest.raises(ValueError, match="at least one position"):
        model(x[:, :0])


@pytest.mark.gpu
def test_cuda_training_step_triton_vs_torch_and_rc_equivariance():
    """On a GPU: bf16-autocast forward/backward with the Triton kernels against the torch
    backend, and exact-in-fp32 RC equivariance, at a moderate size."""
    from genomamba.data.vocab import COMPLEMENT, reverse_complement

    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(tiny_config(d_model=64, n_layer=2, d_state=16, rc_mode="ps")).train()
    perturb(model, seed=4, scale=0.05)
    model.cuda()
    x = torch.randint(0, 4, (2, 4099), device="cuda")
    results = {}
    for backend in ("torch", "triton"):
        model.set_scan_backend(backend)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, grads = loss_and_grads(model, x)
        results[backend] = (logits.float(), grads)
    (ref_logits, ref_grads), (logits, grads) = results["torch"], results["triton"]
    assert (logits - ref_logits).abs().max() < 2e-2 * ref_logits.abs().max()
    for name, g in ref_grads.items():
        assert (grads[name] - g).norm() <= 2e-2 * g.norm() + 1e-6, name
    model.eval()
    with torch.no_grad():
        out, out_rc = model(x), model(reverse_complement(x))
    comp = torch.as_tensor(COMPLEMENT, dtype=torch.long, device="cuda")
    torch.testing.assert_close(out_rc, out.flip(1)[..., comp], rtol=0, atol=1e-5)
