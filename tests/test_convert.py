"""``genomamba convert``: Caduceus checkpoints in and out, exactly.

The fixtures build Caduceus checkpoints as its ``save_pretrained`` writes them (config.json
fields, parameter names and shapes of ``CaduceusForMaskedLM``; tied copies left out) with
random weights. ``caduceus_logits`` is an independent float64 re-statement of Caduceus's
forward (modeling_caduceus.py, modeling_rcps.py, mamba_ssm's Mamba slow path), written
from its code in its own channel layout, not from genomamba's strand layout: the RCPS
embedding, the fused and unfused add+norm branches of ``RCPSMambaBlock`` (the fused one
hands the halves to its sub-calls the other way round), ``RCPSWrapper``, the final norm
and ``RCPSLMHead``, over Caduceus's 16-row vocabulary.
"""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from model_helpers import one_thread  # noqa: F401  (autouse fixture)
from safetensors.torch import load_file, save_file

from genomamba.cli import main
from genomamba.model import GenoMambaForMaskedLM

D_MODEL, D_STATE, D_CONV, EXPAND = 8, 4, 4, 2
D_INNER, DT_RANK = EXPAND * D_MODEL, math.ceil(D_MODEL / 16)
VOCAB = 16
COMPLEMENT = [0, 1, 2, 3, 4, 5, 6, 10, 9, 8, 7, 11, 12, 13, 14, 15]
#: genomamba ids A C G T N -> Caduceus ids
TO_CADUCEUS = torch.tensor([7, 8, 9, 10, 11])


def caduceus_config(**kw):
    cfg = {
        "architectures": ["CaduceusForMaskedLM"], "bidirectional": True, "bidirectional_strategy": "add",
        "bidirectional_weight_tie": True, "complement_map": {str(i): c for i, c in enumerate(COMPLEMENT)},
        "d_model": D_MODEL, "fused_add_norm": True,
        "initializer_cfg": {"initializer_range": 0.02, "n_residuals_per_layer": 1, "rescale_prenorm_residual": True},
        "model_type": "caduceus", "n_layer": 2, "norm_epsilon": 1e-5, "pad_vocab_size_multiple": 8, "rcps": True,
        "residual_in_fp32": False, "rms_norm": True,
        "ssm_cfg": {"bias": False, "conv_bias": True, "d_conv": D_CONV, "d_state": D_STATE, "dt_init": "random",
                    "dt_init_floor": 1e-4, "dt_max": 0.1, "dt_min": 0.001, "dt_rank": "auto", "dt_scale": 1.0,
                    "expand": EXPAND, "use_fast_path": True},
        "torch_dtype": "float32", "transformers_version": "4.38.1", "vocab_size": VOCAB,
    }
    cfg.update(kw)
    return cfg


def caduceus_state(cfg, seed=0):
    """Random weights under CaduceusForMaskedLM's state-dict names (tied copies omitted)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.3, center=0.0):
        return center + scale * torch.randn(*shape, generator=g)

    rcps, p = cfg["rcps"], "caduceus.backbone."
    wrap = ".submodule" if rcps else ""
    norm_wrap = ".submodule" if rcps and not cfg["fused_add_norm"] else ""
    sd = {p + "embeddings.word_embeddings" + (".embedding" if rcps else "") + ".weight": rnd(VOCAB, D_MODEL, scale=1.0)}
    directions = ["mamba_fwd"] + (["mamba_rev"] if cfg["bidirectional"] else [])
    for i in range(cfg["n_layer"]):
        m = f"{p}layers.{i}.mixer{wrap}."
        for k, name in enumerate(directions):
            if k == 0 or not cfg["bidirectional_weight_tie"]:
                sd[m + name + ".in_proj.weight"] = rnd(2 * D_INNER, D_MODEL, scale=0.4)
                sd[m + name + ".out_proj.weight"] = rnd(D_MODEL, D_INNER, scale=0.3)
            sd[m + name + ".conv1d.weight"] = rnd(D_INNER, 1, D_CONV, scale=0.5)
            sd[m + name + ".conv1d.bias"] = rnd(D_INNER, scale=0.1)
            sd[m + name + ".x_proj.weight"] = rnd(DT_RANK + 2 * D_STATE, D_INNER, scale=0.3)
            sd[m + name + ".dt_proj.weight"] = rnd(D_INNER, DT_RANK, scale=0.5)
            sd[m + name + ".dt_proj.bias"] = rnd(D_INNER, scale=0.5, center=-2.0)
            sd[m + name + ".A_log"] = torch.log(torch.arange(1, D_STATE + 1.0)).repeat(D_INNER, 1) + rnd(D_INNER, D_STATE, scale=0.2)
            sd[m + name + ".D"] = rnd(D_INNER, scale=0.3, center=1.0)
        sd[f"{p}layers.{i}.norm{norm_wrap}.weight"] = rnd(D_MODEL, scale=0.2, center=1.0)
        if not cfg["rms_norm"]:
            sd[f"{p}layers.{i}.norm{norm_wrap}.bias"] = rnd(D_MODEL, scale=0.2)
    sd[p + "norm_f" + norm_wrap + ".weight"] = rnd(D_MODEL, scale=0.2, center=1.0)
    if not cfg["rms_norm"]:
        sd[p + "norm_f" + norm_wrap + ".bias"] = rnd(D_MODEL, scale=0.2)
    if not cfg.get("tie_word_embeddings", True):
        sd["lm_head" + (".lm_head" if rcps else "") + ".weight"] = rnd(VOCAB, D_MODEL, scale=0.5)
    if rcps:
        sd[p + "embeddings.word_embeddings.complement_map"] = torch.tensor(COMPLEMENT)
        sd["lm_head.complement_map"] = torch.tensor(COMPLEMENT)
    return sd


def write_caduceus(directory, cfg, sd, bin_file=False):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(cfg, indent=2))
    if bin_file:
        torch.save(sd, directory / "pytorch_model.bin")
    else:
        save_file(sd, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory


# ---- the reference: Caduceus's forward, re-stated in float64 -------------------------------

def _get(sd, name):
    return sd[name].double()


def _mamba(sd, pre, shared, h):
    """mamba_ssm Mamba (slow path): h (b, L, d) -> (b, L, d)."""
    length = h.shape[1]
    proj = lambda part: _get(sd, pre + part) if pre + part in sd else _get(sd, shared + part)  # noqa: E731
    xz = (h @ proj("in_proj.weight").T).transpose(1, 2)
    x, z = xz.chunk(2, dim=1)
    x = F.conv1d(x, _get(sd, pre + "conv1d.weight"), _get(sd, pre + "conv1d.bias"),
                 padding=D_CONV - 1, groups=D_INNER)[..., :length]
    x = F.silu(x)
    x_dbl = x.transpose(1, 2) @ _get(sd, pre + "x_proj.weight").T
    dt, B, C = torch.split(x_dbl, [DT_RANK, D_STATE, D_STATE], dim=-1)
    dt = F.softplus(dt @ _get(sd, pre + "dt_proj.weight").T + _get(sd, pre + "dt_proj.bias"))  # (b, L, e)
    A = -torch.exp(_get(sd, pre + "A_log"))
    state = torch.zeros(h.shape[0], D_INNER, D_STATE, dtype=torch.float64)
    ys = []
    for t in range(length):
        state = torch.exp(dt[:, t, :, None] * A) * state + dt[:, t, :, None] * B[:, t, None, :] * x[:, :, t, None]
        ys.append((state * C[:, t, None, :]).sum(-1))
    y = torch.stack(ys, dim=-1) + x * _get(sd, pre + "D")[:, None]
    y = y * F.silu(z)
    return y.transpose(1, 2) @ proj("out_proj.weight").T


def _bimamba(sd, pre, cfg, h):
    out = _mamba(sd, pre + "mamba_fwd.", pre + "mamba_fwd.", h)
    if cfg["bidirectional"]:
        shared = pre + ("mamba_fwd." if cfg["bidirectional_weight_tie"] else "mamba_rev.")
        rev = _mamba(sd, pre + "mamba_rev.", shared, h.flip(1)).flip(1)
        out = out + rev if cfg["bidirectional_strategy"] == "add" else out * rev
    return out


def _norm(sd, name, cfg, x):
    w = _get(sd, name + ".weight")
    if cfg["rms_norm"]:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["norm_epsilon"]) * w
    return F.layer_norm(x, w.shape, w, _get(sd, name + ".bias"), cfg["norm_epsilon"])


def _rc(x):
    return x.flip(-2, -1)


def caduceus_logits(sd, cfg, ids):
    """CaduceusForMaskedLM(ids).logits, float64: ids (b, L) Caduceus ids -> (b, L, 16)."""
    p, rcps, fused = "caduceus.backbone.", cfg["rcps"], cfg["fused_add_norm"]
    comp = torch.tensor(COMPLEMENT)
    emb = _get(sd, p + "embeddings.word_embeddings" + (".embedding" if rcps else "") + ".weight")
    if rcps:  # RCPSEmbedding
        hidden = torch.cat([emb[ids], emb[comp[ids.flip(-1)]].flip(-2, -1)], dim=-1)
    else:
        hidden = emb[ids]
    residual, half = None, D_MODEL
    norm_wrap = ".submodule" if rcps and not fused else ""
    for i in range(cfg["n_layer"]):
        norm = f"{p}layers.{i}.norm{norm_wrap}"
        mixer = f"{p}layers.{i}.mixer" + (".submodule." if rcps else ".")
        if not rcps:  # mamba_ssm Block: both branches compute the same
            residual = hidden if residual is None else hidden + residual
            hidden = _norm(sd, norm, cfg, residual)
            hidden = _bimamba(sd, mixer, cfg, hidden)
            continue
        if not fused:  # RCPSAddNormWrapper(norm)(hidden, residual, prenorm=True)
            if residual is None:
                residual = hidden
                h_fwd = _norm(sd, norm, cfg, hidden[..., :half])
                h_rc = _norm(sd, norm, cfg, _rc(hidden[..., half:]))
            else:
                r_fwd = hidden[..., :half] + residual[..., :half]
                r_rc = _rc(hidden[..., half:]) + _rc(residual[..., half:])
                h_fwd, h_rc = _norm(sd, norm, cfg, r_fwd), _norm(sd, norm, cfg, r_rc)
                residual = torch.cat([r_fwd, _rc(r_rc)], dim=-1)
            hidden = torch.cat([h_fwd, _rc(h_rc)], dim=-1)
        else:  # the fused branch: fn(x, residual, prenorm=True) -> (norm(x + residual), x + residual)
            def add(x, r):
                return x if r is None else x + r

            r_fwd = add(hidden[..., half:], None if residual is None else residual[..., half:])
            r_rc = add(hidden[..., :half].flip(-2, -1), None if residual is None else residual[..., :half].flip(-2, -1))
            h_fwd, h_rc = _norm(sd, norm, cfg, r_fwd), _norm(sd, norm, cfg, r_rc)
            hidden = torch.cat([h_fwd, h_rc.flip(-2, -1)], dim=-1)
            residual = torch.cat([r_fwd, r_rc.flip(-2, -1)], dim=-1)
        # RCPSWrapper(mixer)
        out_fwd = _bimamba(sd, mixer, cfg, hidden[..., :half])
        out_rc = _bimamba(sd, mixer, cfg, _rc(hidden[..., half:]))
        hidden = torch.cat([out_fwd, _rc(out_rc)], dim=-1)
    norm_f = p + "norm_f" + norm_wrap
    if not rcps:
        hidden = _norm(sd, norm_f, cfg, hidden + residual)
    elif not fused:  # RCPSAddNormWrapper, prenorm=False
        h_fwd = _norm(sd, norm_f, cfg, hidden[..., :half] + residual[..., :half])
        h_rc = _norm(sd, norm_f, cfg, _rc(hidden[..., half:]) + _rc(residual[..., half:]))
        hidden = torch.cat([h_fwd, _rc(h_rc)], dim=-1)
    else:
        h_fwd = _norm(sd, norm_f, cfg, hidden[..., :half] + residual[..., :half])
        h_rc = _norm(sd, norm_f, cfg, (hidden[..., half:] + residual[..., half:]).flip(-2, -1))
        hidden = torch.cat([h_fwd, h_rc.flip(-2, -1)], dim=-1)
    head = "lm_head" + (".lm_head" if rcps else "") + ".weight"
    # CaduceusForMaskedLM.tie_weights: an RCPS head is always the embedding; otherwise
    # Hugging Face ties it unless tie_word_embeddings is false
    w = _get(sd, head) if head in sd and not rcps and cfg.get("tie_word_embeddings") is False else emb
    if not rcps:
        return hidden @ w.T
    # RCPSLMHead
    return hidden[..., :half] @ w.T + hidden[..., half:].flip(-1) @ w[comp].T


def acgt_logp(logits):
    return torch.log_softmax(logits[..., :4].double(), dim=-1)


def reference_acgt_logp(sd, cfg, ids):
    return torch.log_softmax(caduceus_logits(sd, cfg, TO_CADUCEUS[ids])[..., 7:11], dim=-1)


def convert(src, out):
    assert main(["convert", "--from", "caduceus", str(src), "--out", str(out)]) == 0
    return GenoMambaForMaskedLM.from_pretrained(out, scan_backend="torch").eval()


def random_ids(length, seed, batch=2, n=True):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 5 if n else 4, (batch, length), generator=g)


# ---- exactness ----------------------------------------------------------------------------

CASES = {
    "ps-fused-even": dict(rcps=True, fused_add_norm=True, n_layer=2),
    "ps-fused-odd": dict(rcps=True, fused_add_norm=True, n_layer=3),
    "ps-unfused-even": dict(rcps=True, fused_add_norm=False, n_layer=2),
    "ps-unfused-odd": dict(rcps=True, fused_add_norm=False, n_layer=3),
    "ph-fused-odd": dict(rcps=False, fused_add_norm=True, n_layer=3),
    "ph-unfused-even": dict(rcps=False, fused_add_norm=False, n_layer=2),
    "ps-multiply-untied-layernorm": dict(rcps=True, n_layer=3, bidirectional_strategy="ew_multiply",
                                         bidirectional_weight_tie=False, rms_norm=False, residual_in_fp32=True),
    "ps-unidirectional": dict(rcps=True, n_layer=2, bidirectional=False),
    "ph-untied-head-padded-12": dict(rcps=False, n_layer=2, tie_word_embeddings=False, bidirectional_weight_tie=False),
}


@pytest.mark.parametrize("case", CASES)
def test_converted_model_matches_caduceus_forward(tmp_path, case):
    cfg = caduceus_config(**CASES[case])
    sd = caduceus_state(cfg, seed=len(case))
    if case.endswith("padded-12"):  # an unpadded config: vocab_size 12, padded to 16 by Caduceus
        cfg["vocab_size"] = 12
        cfg["complement_map"] = {str(i): c for i, c in enumerate(COMPLEMENT[:12])}
    model = convert(write_caduceus(tmp_path / "src", cfg, sd), tmp_path / "out")
    for length, seed in ((1, 1), (5, 2), (67, 3)):
        ids = random_ids(length, seed)
        with torch.no_grad():
            ours = model(ids, rc_average=False)
        expected = reference_acgt_logp(sd, cfg, ids)
        assert (acgt_logp(ours) - expected).abs().max() < 1e-4, (case, length)
        # logits of A C G T N themselves, not only their normalised differences
        full = caduceus_logits(sd, cfg, TO_CADUCEUS[ids])[..., 7:12]
        assert (ours[..., :5].double() - full).abs().max() < 1e-4


def test_long_fused_ps_sequence_matches(tmp_path):
    cfg = caduceus_config(n_layer=3)
    sd = caduceus_state(cfg, seed=7)
    model = convert(write_caduceus(tmp_path / "src", cfg, sd), tmp_path / "out")
    ids = random_ids(300, 9, batch=1)
    with torch.no_grad():
        diff = (acgt_logp(model(ids)) - reference_acgt_logp(sd, cfg, ids)).abs().max()
    assert diff < 1e-4


def test_fused_and_unfused_orders_are_different_functions(tmp_path):
    """The same weights give other log-probabilities under the other order, so the
    exactness test above tells the two apart."""
    cfg = caduceus_config(n_layer=2)
    sd = caduceus_state(cfg, seed=3)
    ids = random_ids(40, 4)
    fused = reference_acgt_logp(sd, cfg, ids)
    unfused_sd = {k.replace(".norm.weight", ".norm.submodule.weight").replace("norm_f.weight", "norm_f.submodule.weight"): v
                  for k, v in sd.items()}
    unfused = reference_acgt_logp(unfused_sd, {**cfg, "fused_add_norm": False}, ids)
    assert (fused - unfused).abs().max() > 0.05


def test_converted_ph_model_averages_strands_by_default(tmp_path):
    cfg = caduceus_config(rcps=False, n_layer=2)
    sd = caduceus_state(cfg, seed=5)
    model = convert(write_caduceus(tmp_path / "src", cfg, sd), tmp_path / "out")
    ids = random_ids(20, 6)
    rc = (3 - ids.flip(-1)).where(ids.flip(-1) < 4, ids.flip(-1))
    ref = caduceus_logits(sd, cfg, TO_CADUCEUS[ids])[..., 7:11]
    ref_rc = caduceus_logits(sd, cfg, TO_CADUCEUS[rc])[..., 7:11].flip(1).flip(-1)  # back to x's strand
    with torch.no_grad():
        assert (model(ids)[..., :4].double() - 0.5 * (ref + ref_rc)).abs().max() < 1e-4


@pytest.mark.parametrize("fused", [True, False])
def test_converted_ps_model_is_rc_equivariant(tmp_path, fused):
    cfg = caduceus_config(n_layer=3, fused_add_norm=fused)
    model = convert(write_caduceus(tmp_path / "src", cfg, caduceus_state(cfg, seed=11)), tmp_path / "out").double()
    ids = random_ids(33, 12)
    rc = (3 - ids.flip(-1)).where(ids.flip(-1) < 4, ids.flip(-1))
    with torch.no_grad():
        logits, logits_rc = model(ids), model(rc)
    comp = model.backbone.complement
    torch.testing.assert_close(logits_rc, logits.flip(1)[..., comp], rtol=0, atol=1e-12)


# ---- round trips --------------------------------------------------------------------------

def _export(src, out):
    assert main(["convert", "--to", "caduceus", str(src), "--out", str(out)]) == 0
    return json.loads((out / "config.json").read_text()), load_file(str(out / "model.safetensors"))


@pytest.mark.parametrize("case", ["ps-fused-odd", "ph-unfused-even", "ps-multiply-untied-layernorm"])
def test_caduceus_round_trip_is_bit_exact(tmp_path, case):
    cfg = caduceus_config(**CASES[case])
    sd = caduceus_state(cfg, seed=2)
    sd[next(k for k in sd if "word_embeddings" in k and k.endswith("weight"))][[0, 5, 12]] += 3.0  # special rows
    convert(write_caduceus(tmp_path / "src", cfg, sd), tmp_path / "gm")
    back_cfg, back = _export(tmp_path / "gm", tmp_path / "back")
    assert back_cfg == cfg
    assert sorted(back) == sorted(sd)
    for key, tensor in sd.items():
        assert back[key].dtype == tensor.dtype and torch.equal(back[key], tensor), key


@pytest.mark.parametrize("rc_mode,swap", [("ps", True), ("ps", False), ("ph", False)])
def test_genomamba_round_trip_is_bit_exact_and_caduceus_computes_the_same(tmp_path, rc_mode, swap):
    from genomamba.model import GenoMambaConfig
    from model_helpers import perturb

    config = GenoMambaConfig(d_model=D_MODEL, n_layer=3, d_state=D_STATE, rc_mode=rc_mode,
                             rcps_strand_swap=swap, scan_backend="torch")
    model = GenoMambaForMaskedLM(config)
    perturb(model, seed=4)
    model.save_pretrained(tmp_path / "gm")
    cad_cfg, cad_sd = _export(tmp_path / "gm", tmp_path / "cad")
    assert cad_cfg["fused_add_norm"] is swap and cad_cfg["rcps"] is (rc_mode == "ps")
    ids = random_ids(25, 8)
    with torch.no_grad():
        ours = model.eval()(ids, rc_average=False)
    assert (acgt_logp(ours) - reference_acgt_logp(cad_sd, cad_cfg, ids)).abs().max() < 1e-4
    again = convert(tmp_path / "cad", tmp_path / "gm2")
    assert sorted(again.state_dict()) == sorted(model.state_dict())
    for key, tensor in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], tensor), key
    runtime = ("scan_backend", "gradient_checkpointing")
    assert {k: v for k, v in again.config.to_dict().items() if k not in runtime} == \
           {k: v for k, v in config.to_dict().items() if k not in runtime}


def test_pytorch_model_bin_and_hub_cache_snapshot(tmp_path):
    cfg = caduceus_config(n_layer=2)
    sd = caduceus_state(cfg, seed=1)
    write_caduceus(tmp_path / "a", cfg, sd)
    repo = tmp_path / "models--kuleshov-group--caduceus-ps"
    snap = write_caduceus(repo / "snapshots" / "abc123", cfg, sd, bin_file=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123\n")
    a, b = convert(tmp_path / "a", tmp_path / "ga"), convert(repo, tmp_path / "gb")
    for key, tensor in a.state_dict().items():
        assert torch.equal(b.state_dict()[key], tensor)
    prov = json.loads((tmp_path / "gb" / "caduceus.json").read_text())
    import hashlib

    assert prov["source_directory"] == str(snap)
    assert prov["source_weights"] == "pytorch_model.bin"
    assert prov["source_weights_sha256"] == hashlib.sha256((snap / "pytorch_model.bin").read_bytes()).hexdigest()
    assert prov["source_config"] == cfg


# ---- errors: one line, nothing written ----------------------------------------------------

class Payload:
    """Pickles to something that runs code when loaded (refused by weights_only)."""

    def __reduce__(self):
        return (print, ("code ran",))


def _fail(capsys, tmp_path, args):
    out = tmp_path / "out"
    assert main(["convert", *args, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("genomamba: error: ") and err.count("\n") == 1, err
    assert not out.exists()
    return err


@pytest.mark.parametrize("edit,expected", [
    (lambda c, s: c["ssm_cfg"].update(bias=True), "ssm_cfg.bias = true is not supported"),
    (lambda c, s: c.update(bidirectional_strategy="concat"), 'bidirectional_strategy = "concat"'),
    (lambda c, s: c.update(rms_norm="yes"), 'rms_norm = "yes"'),
    (lambda c, s: c.update(layer_cfg={"mamba_cfg": {"version": "v2"}}), "layer_cfg = "),
    (lambda c, s: c.update(architectures=["CaduceusForSequenceClassification"]), "architectures = "),
    (lambda c, s: c.update(complement_map={**c["complement_map"], "7": 8}), "complement_map[7] (A) = 8"),
    (lambda c, s: c.update(d_model=12), "has shape"),
    (lambda c, s: s.pop("caduceus.backbone.norm_f.weight"), "missing weight caduceus.backbone.norm_f.weight"),
    (lambda c, s: s.update(extra=torch.zeros(2)), "unexpected weight(s) extra"),
    (lambda c, s: s.update({"lm_head.lm_head.weight": torch.ones(VOCAB, D_MODEL)}),
     "lm_head.lm_head.weight differs from caduceus.backbone.embeddings.word_embeddings.embedding.weight"),
    (lambda c, s: s["caduceus.backbone.embeddings.word_embeddings.complement_map"].fill_(0), "differs from the config"),
])
def test_bad_caduceus_checkpoints_are_one_line_errors(tmp_path, capsys, edit, expected):
    cfg = caduceus_config()
    sd = caduceus_state(cfg)
    edit(cfg, sd)
    write_caduceus(tmp_path / "src", cfg, sd)
    assert expected in _fail(capsys, tmp_path, ["--from", "caduceus", str(tmp_path / "src")])


def test_unreadable_weight_files_are_one_line_errors(tmp_path, capsys):
    cfg = caduceus_config()
    src = write_caduceus(tmp_path / "src", cfg, caduceus_state(cfg))
    args = ["--from", "caduceus", str(src)]
    data = (src / "model.safetensors").read_bytes()
    (src / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert "model.safetensors: cannot read weights" in _fail(capsys, tmp_path, args)
    (src / "model.safetensors").unlink()
    assert "missing weight file" in _fail(capsys, tmp_path, args)
    torch.save({"w": Payload()}, src / "pytorch_model.bin")
    err = _fail(capsys, tmp_path, args)
    assert "pytorch_model.bin: cannot read weights" in err and "code ran" not in err
    (src / "config.json").write_text("{not json")
    assert "config.json: not valid JSON" in _fail(capsys, tmp_path, args)


def test_export_refuses_a_non_empty_directory(tmp_path, capsys):
    from genomamba.model import GenoMambaConfig

    GenoMambaForMaskedLM(GenoMambaConfig(d_model=D_MODEL, n_layer=1, d_state=D_STATE)).save_pretrained(tmp_path / "gm")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    assert main(["convert", "--to", "caduceus", str(tmp_path / "gm"), "--out", str(tmp_path / "out")]) == 1
    assert "not an empty directory" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


# ---- the converted directory is an ordinary genomamba model --------------------------------

def test_score_runs_on_a_converted_model(tmp_path):
    from pathlib import Path

    resources = Path(__file__).resolve().parents[1] / "resources"
    cfg = caduceus_config(n_layer=2)
    convert(write_caduceus(tmp_path / "src", cfg, caduceus_state(cfg)), tmp_path / "model")
    out = tmp_path / "scores.tsv"
    assert main(["score", "--model", str(tmp_path / "model"), "--reference", str(resources / "NC_001133.9.fa.gz"),
                 "--vcf", str(resources / "example.vcf.gz"), "--out", str(out), "--window", "33",
                 "--device", "cpu"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) > 1 and "GM_LLR" in lines[0]


def test_strand_swap_under_gradient_checkpointing_computes_the_same(tmp_path):
    cfg = caduceus_config(n_layer=3)
    model = convert(write_caduceus(tmp_path / "src", cfg, caduceus_state(cfg, seed=13)), tmp_path / "out")
    ids = random_ids(21, 14)
    with torch.no_grad():
        plain = model(ids)
    model.train()
    model.config.gradient_checkpointing = True
    logits = model(ids)
    logits.sum().backward()
    torch.testing.assert_close(logits.detach(), plain, rtol=0, atol=1e-6)
    assert model.backbone.embedding.weight.grad is not None
