"""Reverse-complement equivariance (PS), invariance of the classifier (PS, PH), and the
strand-batched PS backbone against a literal Caduceus-layout computation."""

import pytest
import torch
import torch.nn.functional as F

from genomamba.data.vocab import COMPLEMENT, reverse_complement
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM, GenoMambaForSequenceClassification

LENGTHS = [1, 7, 33]


from model_helpers import one_thread, perturb, tiny_config  # noqa: E402,F401


def random_tokens(batch, length, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 7, (batch, length), generator=g)  # all tokens, specials included


def rc_of_logits(logits):
    """Positions reversed, vocabulary complemented."""
    return logits.flip(1)[..., torch.as_tensor(COMPLEMENT, dtype=torch.long)]


@pytest.mark.parametrize("strategy", ["add", "mul"])
@pytest.mark.parametrize("length", LENGTHS)
def test_ps_masked_lm_is_rc_equivariant(length, strategy):
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(tiny_config(rc_mode="ps", bidirectional_strategy=strategy)).eval()
    perturb(model, seed=length)
    x = random_tokens(3, length, seed=length)
    logits, logits_rc = model(x), model(reverse_complement(x))
    assert logits.shape == (3, length, 7) and logits.dtype == torch.float32
    torch.testing.assert_close(logits_rc, rc_of_logits(logits), rtol=0, atol=1e-5)
    # the check is not vacuous: the logits are not themselves RC-symmetric
    assert (logits - rc_of_logits(logits)).abs().max() > 1e-2 or length == 1


@pytest.mark.parametrize("length", LENGTHS)
def test_ps_features_are_rc_equivariant(length):
    model = GenoMambaForMaskedLM(tiny_config(rc_mode="ps")).eval()
    perturb(model, seed=7)
    x = random_tokens(2, length, seed=1)
    h, h_rc = model.embed(x), model.embed(reverse_complement(x))
    assert h.shape == (2, length, 32)
    torch.testing.assert_close(h_rc, h.flip(1, 2), rtol=0, atol=1e-5)


def caduceus_layout_logits(model, x):
    """Caduceus-PS written literally, in its 2 * d_model channel layout: every norm and mixer
    sees the first half, and the length-and-channel-flipped second half, then flips back."""
    bb, d = model.backbone, model.config.d_model
    emb = bb.embedding

    def rc(t):
        return t.flip(-2, -1)

    def wrap(fn, t):
        return torch.cat([fn(t[..., :d]), rc(fn(rc(t[..., d:])))], dim=-1)

    hidden = torch.cat([emb(x), rc(emb(reverse_complement(x)))], dim=-1)
    residual = None
    for layer in bb.layers:
        residual = hidden if residual is None else hidden + residual
        hidden = wrap(layer.mixer, wrap(layer.norm, residual))
    features = wrap(bb.norm_f, hidden + residual)
    w = emb.weight
    comp = torch.as_tensor(COMPLEMENT, dtype=torch.long)
    logits = F.linear(features[..., :d], w) + F.linear(features[..., d:].flip(-1), w[comp])
    return features, logits


@pytest.mark.parametrize("length", [1, 7])
def test_ps_backbone_equals_caduceus_channel_layout(length):
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(tiny_config(rc_mode="ps")).double().eval()
    perturb(model, seed=11)
    x = random_tokens(2, length, seed=2)
    features, logits = caduceus_layout_logits(model, x)
    torch.testing.assert_close(model.embed(x), features, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model(x), logits, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("rc_mode", ["ps", "ph"])
@pytest.mark.parametrize("pooling", ["mean", "max", "center"])
@pytest.mark.parametrize("length", [1, 8, 33])
def test_classifier_is_rc_invariant(rc_mode, pooling, length):
    torch.manual_seed(0)
    model = GenoMambaForSequenceClassification(tiny_config(rc_mode=rc_mode), num_labels=3, pooling=pooling)
    model.eval()
    perturb(model, seed=5)
    x = random_tokens(4, length, seed=3)
    logits = model(x)
    assert logits.shape == (4, 3)
    torch.testing.assert_close(model(reverse_complement(x)), logits, rtol=0, atol=1e-5)
    # different sequences still get different predictions
    assert (logits[0] - logits[1]).abs().max() > 1e-4


def test_ph_rc_average_at_inference_only():
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(tiny_config(rc_mode="ph"))
    perturb(model, seed=9)
    x = random_tokens(2, 9, seed=4)
    single = model(x, rc_average=False)
    model.train()  # training (with RC augmentation): one strand, no averaging
    torch.testing.assert_close(model(x), single, rtol=0, atol=0)
    model.eval()  # inference: both strands averaged, hence RC-equivariant
    averaged = model(x)
    torch.testing.assert_close(model(reverse_complement(x)), rc_of_logits(averaged), rtol=0, atol=1e-5)
    torch.testing.assert_close(averaged, (single + rc_of_logits(model(reverse_complement(x), rc_average=False))) / 2,
                               rtol=0, atol=1e-5)
    # without averaging the PH model is not equivariant (the averaging is doing the work)
    assert (model(reverse_complement(x), rc_average=False) - rc_of_logits(single)).abs().max() > 1e-3


def test_ph_classifier_without_average_is_not_invariant():
    model = GenoMambaForSequenceClassification(tiny_config(rc_mode="ph"), num_labels=2).eval()
    perturb(model, seed=6)
    x = random_tokens(3, 12, seed=8)
    diff = model(x, rc_average=False) - model(reverse_complement(x), rc_average=False)
    assert diff.abs().max() > 1e-4


def test_mean_and_max_pooling_ignore_padding():
    model = GenoMambaForSequenceClassification(tiny_config(rc_mode="none"), num_labels=2, pooling="mean").eval()
    perturb(model, seed=4)
    x = random_tokens(1, 10, seed=5).clamp(max=3)
    padded = torch.cat([x, torch.full((1, 3), 5)], dim=1)
    hidden, ids = model.backbone.strands(padded, both=False)
    expected = model.score(hidden[:, :10].mean(1))
    torch.testing.assert_close(model(padded), expected, rtol=1e-6, atol=1e-6)
    model.pooling = "max"
    torch.testing.assert_close(model(padded), model.score(hidden[:, :10].amax(1)), rtol=1e-6, atol=1e-6)
