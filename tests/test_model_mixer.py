"""Mamba mixers against a from-scratch reference, initialisation, bidirectionality."""

import math

import pytest
import torch
import torch.nn.functional as F

from genomamba.model import BiMamba, GenoMambaConfig, GenoMambaForMaskedLM, MambaMixer
from genomamba.ops import selective_scan_ref


from model_helpers import one_thread, perturb, tiny_config  # noqa: E402,F401


def ref_direction(x, z, ssm, reverse):
    """Caduceus's definition of a direction: flip -> causal conv + scan -> flip, written
    with an explicit tap loop and the sequential reference scan."""
    if reverse:
        x, z = x.flip(-1), z.flip(-1)
    length = x.shape[-1]
    w = ssm.conv1d.weight[:, 0]  # (d_inner, k)
    k = w.shape[-1]
    xp = F.pad(x, (k - 1, 0))
    conv = sum(w[:, j, None] * xp[..., j:j + length] for j in range(k)) + ssm.conv1d.bias[:, None]
    u = F.silu(conv)
    x_dbl = torch.einsum("bel,fe->bfl", u, ssm.x_proj.weight)
    dt, B, C = torch.split(x_dbl, [ssm.dt_rank, ssm.d_state, ssm.d_state], dim=1)
    delta = torch.einsum("brl,er->bel", dt, ssm.dt_proj.weight)
    y = selective_scan_ref(u, delta, -torch.exp(ssm.A_log), B, C, ssm.D, z,
                                 delta_bias=ssm.dt_proj.bias, delta_softplus=True)
    return y.flip(-1) if reverse else y


def ref_mixer(mixer, hidden):
    xz = torch.einsum("bld,ed->bel", hidden, mixer.in_proj.weight)
    x, z = xz.chunk(2, dim=1)

    def out(y):
        return torch.einsum("bel,de->bld", y, mixer.out_proj.weight)

    if isinstance(mixer, MambaMixer):
        return out(ref_direction(x, z, mixer.ssm, mixer.ssm.reverse))
    y_fwd, y_rev = ref_direction(x, z, mixer.fwd, False), ref_direction(x, z, mixer.rev, True)
    if mixer.config.bidirectional_strategy == "add":
        return out(y_fwd + y_rev)
    return out(y_fwd) * out(y_rev)


@pytest.mark.parametrize("kind", ["fwd", "rev", "bi-add", "bi-mul"])
@pytest.mark.parametrize("length", [1, 7, 33])
def test_mixer_matches_reference(kind, length):
    torch.manual_seed(0)
    if kind.startswith("bi"):
        mixer = BiMamba(tiny_config(bidirectional_strategy=kind[3:]))
    else:
        mixer = MambaMixer(tiny_config(), reverse=kind == "rev")
    mixer = mixer.double()
    perturb(mixer, seed=1)
    hidden = torch.randn(2, length, 16, dtype=torch.float64)
    torch.testing.assert_close(mixer(hidden), ref_mixer(mixer, hidden), rtol=1e-9, atol=1e-10)


def test_anticausal_conv_is_flipped_causal_conv():
    torch.manual_seed(0)
    mixer = BiMamba(tiny_config(d_conv=4))
    perturb(mixer, seed=2)
    x = torch.randn(2, mixer.rev.conv1d.in_channels, 9)
    # same weights in a causal direction module
    mixer.fwd.conv1d.load_state_dict(mixer.rev.conv1d.state_dict())
    torch.testing.assert_close(mixer.rev.conv(x), mixer.fwd.conv(x.flip(-1)).flip(-1))
    # and it reads only positions t .. t + k - 1: changing x[..., :t] leaves out[..., t:] alone
    t = 5
    x2 = x.clone()
    x2[..., :t] += 1.0
    out, out2 = mixer.rev.conv(x), mixer.rev.conv(x2)
    torch.testing.assert_close(out[..., t:], out2[..., t:], rtol=0, atol=0)
    assert not torch.allclose(out[..., :t], out2[..., :t])


def test_bimamba_ties_projections_and_counts_parameters():
    config = tiny_config()
    mixer = BiMamba(config)
    d, e, n, r, k = config.d_model, config.d_inner, config.d_state, config.dt_rank_value, config.d_conv
    per_direction = e * k + e + e * (r + 2 * n) + r * e + e + e * n + e
    assert sum(p.numel() for p in mixer.parameters()) == d * 2 * e + e * d + 2 * per_direction
    # a gradient through the reverse direction alone reaches the shared in_proj and out_proj
    with torch.no_grad():
        mixer.fwd.D.zero_()
        mixer.fwd.x_proj.weight.zero_()  # forward direction: B = C = 0, D = 0 -> output 0
    mixer(torch.randn(1, 5, config.d_model)).sum().backward()
    assert mixer.in_proj.weight.grad.abs().sum() > 0 and mixer.out_proj.weight.grad.abs().sum() > 0
    assert mixer.rev.x_proj.weight.grad.abs().sum() > 0


def test_initialisation():
    torch.manual_seed(0)
    config = tiny_config(d_model=32, n_layer=3, dt_min=0.002, dt_max=0.05)
    model = GenoMambaForMaskedLM(config)
    for block in model.backbone.layers:
        for ssm in (block.mixer.fwd, block.mixer.rev):
            expected_a = torch.log(torch.arange(1, config.d_state + 1, dtype=torch.float32)).expand_as(ssm.A_log)
            torch.testing.assert_close(ssm.A_log, expected_a)
            assert torch.equal(ssm.D, torch.ones_like(ssm.D))
            dt = F.softplus(ssm.dt_proj.bias)
            assert dt.min() >= config.dt_min * (1 - 1e-4) and dt.max() <= config.dt_max * (1 + 1e-4)
            bound = config.dt_rank_value ** -0.5 * config.dt_scale
            assert ssm.dt_proj.weight.abs().max() <= bound
        # out_proj: kaiming-uniform bound 1/sqrt(fan_in), divided by sqrt(n_layer)
        bound = 1 / math.sqrt(config.d_inner) / math.sqrt(config.n_layer)
        assert block.mixer.out_proj.weight.abs().max() <= bound
        assert block.mixer.out_proj.weight.abs().max() > 0.5 * bound
    assert abs(model.backbone.embedding.weight.std().item() - config.initializer_range) < 0.01


def test_default_config_has_caduceus_size():
    n = GenoMambaForMaskedLM(GenoMambaConfig()).num_parameters()
    assert abs(n - 7.7e6) / 7.7e6 < 0.01, n


@pytest.mark.parametrize("rc_mode,bidirectional", [("ps", True), ("ph", True), ("none", True), ("none", False)])
def test_gradient_reaches_future_positions_only_when_bidirectional(rc_mode, bidirectional):
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(tiny_config(rc_mode=rc_mode, bidirectional=bidirectional)).train()
    perturb(model, seed=3, scale=0.1)
    captured = {}

    def keep_output(module, args, out):
        out.retain_grad()
        captured["emb"] = out

    model.backbone.embedding.register_forward_hook(keep_output)
    length, i = 12, 5
    x = torch.randint(0, 4, (1, length))
    logits = model(x)
    logits[:, i].square().sum().backward()
    grad = captured["emb"].grad[0].abs().sum(-1)  # forward strand, per position
    assert (grad[: i + 1] > 0).all()
    if bidirectional:
        assert (grad[i + 1:] > 0).all()
    else:
        assert (grad[i + 1:] == 0).all()
