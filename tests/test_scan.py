"""Selective scan: every backend against the float64 sequential reference.

On a machine without a GPU the Triton kernels run in Triton's interpreter
(tests/conftest.py sets TRITON_INTERPRET=1), so the kernel code itself is checked
here, at small sizes. Inputs are fresh random draws each run; outputs are
poisoned with NaN before each kernel run, so an unwritten element fails.
"""

import pytest
import torch
import triton

import genomamba.ops.scan_torch as scan_torch
import genomamba.ops.scan_triton as scan_triton
from genomamba.ops.backend import interpreting
from genomamba.ops import selective_scan, selective_scan_bidirectional
from genomamba.ops.scan_ref import selective_scan_ref

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

# (batch, dim, L, N, groups)
SHAPES = [
    (2, 4, 19, 3, None),  # L not a multiple of any block, N not a power of two
    (1, 2, 1, 4, None),  # L = 1
    (2, 4, 21, 4, 2),  # groups
    (3, 3, 9, 2, None),  # dim not a multiple of the channel block
]


@pytest.fixture(autouse=True)
def poison(monkeypatch):
    monkeypatch.setattr(scan_triton, "POISON_OUTPUTS", True)
    # small torch blocks so that several blocks chain even at these lengths
    monkeypatch.setattr(scan_torch, "_BLOCK_ELEMENTS", 64)


def rel_err(x, ref):
    """||x - ref|| / ||ref||; the absolute error where ref is exactly zero (dA at L = 1)."""
    x, ref = x.double(), ref.double()
    scale = ref.norm()
    return ((x - ref).norm() / (scale if scale > 0 else 1.0)).item()


def make_inputs(batch, dim, length, nstate, groups, dtype, full, seed=None):
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed())
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    bc_shape = (batch, nstate, length) if groups is None else (batch, groups, nstate, length)
    x = {
        "u": r(batch, dim, length).to(dtype),
        "delta": (0.5 * r(batch, dim, length)).to(dtype),
        "A": -torch.rand(dim, nstate, generator=g) * 2 - 0.1,
        "B": r(*bc_shape).to(dtype),
        "C": r(*bc_shape).to(dtype),
        "D": r(dim) if full else None,
        "z": r(batch, dim, length).to(dtype) if full else None,
        "delta_bias": (0.5 * r(dim)) if full else None,
    }
    return {k: (None if v is None else v.to(DEVICE)) for k, v in x.items()}


def run(fn, inputs, grad_out, grad_last, **kw):
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items() if v is not None}
    args = {k: leaves.get(k) for k in inputs}
    out, last = fn(**args, return_last_state=True, **kw)
    grads = torch.autograd.grad((out, last), list(leaves.values()), (grad_out.to(out.dtype), grad_last))
    return out, last, dict(zip(leaves.keys(), grads))


def reference(inputs, grad_out, grad_last, **kw):
    as64 = {k: None if v is None else v.double() for k, v in inputs.items()}
    return run(selective_scan_ref, as64, grad_out.double(), grad_last.double(), **kw)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("full", [True, False], ids=["D_z_bias_softplus", "bare"])
def test_matches_float64_reference_fp32(backend, shape, reverse, full):
    inputs = make_inputs(*shape, torch.float32, full)
    batch, dim, length, nstate, _ = shape
    grad_out = torch.randn(batch, dim, length, device=DEVICE)
    grad_last = torch.randn(batch, dim, nstate, device=DEVICE)
    kw = dict(delta_softplus=full, reverse=reverse)
    out, last, grads = run(selective_scan, inputs, grad_out, grad_last, backend=backend, **kw)
    ref_out, ref_last, ref_grads = reference(inputs, grad_out, grad_last, **kw)
    assert out.dtype == torch.float32 and last.dtype == torch.float32
    assert rel_err(out, ref_out) <= 1e-5
    assert rel_err(last, ref_last) <= 1e-5
    assert set(grads) == set(ref_grads)
    for name in grads:
        assert grads[name].shape == inputs[name].shape
        assert rel_err(grads[name], ref_grads[name]) <= 1e-5, name


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_accumulate_in_fp32(backend, dtype):
    shape = (2, 4, 23, 4, None)
    inputs = make_inputs(*shape, dtype, True)
    grad_out = torch.randn(2, 4, 23, device=DEVICE)
    grad_last = torch.randn(2, 4, 4, device=DEVICE)
    kw = dict(delta_softplus=True, reverse=False)
    out, last, grads = run(selective_scan, inputs, grad_out, grad_last, backend=backend, **kw)
    ref_out, ref_last, ref_grads = reference(inputs, grad_out, grad_last, **kw)
    assert out.dtype == dtype
    assert rel_err(out, ref_out) <= 1e-2
    assert rel_err(last, ref_last) <= 1e-2
    for name in grads:
        assert grads[name].dtype == inputs[name].dtype
        assert rel_err(grads[name], ref_grads[name]) <= 1e-2, name


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("shared_z", [True, False])
def test_bidirectional_is_forward_plus_reverse(backend, shared_z):
    batch, dim, length, nstate = 2, 4, 17, 3
    per_dir = [make_inputs(batch, dim, length, nstate, None, torch.float32, True) for _ in range(2)]
    stacked = {k: torch.stack([per_dir[0][k], per_dir[1][k]]) for k in per_dir[0]}
    if shared_z:
        stacked["z"] = per_dir[0]["z"]
    leaves = {k: v.clone().requires_grad_() for k, v in stacked.items()}
    out = selective_scan_bidirectional(**leaves, delta_softplus=True, backend=backend)
    pair = selective_scan_bidirectional(**leaves, delta_softplus=True, combine=None, backend=backend)
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, list(leaves.values()), grad_out)

    ref_leaves = {k: v.detach().double().requires_grad_() for k, v in stacked.items()}
    outs = []
    for k in range(2):
        z = ref_leaves["z"] if shared_z else ref_leaves["z"][k]
        args = {n: ref_leaves[n][k] for n in ("u", "delta", "A", "B", "C", "D", "delta_bias")}
        outs.append(selective_scan_ref(**args, z=z, delta_softplus=True, reverse=k == 1))
    ref = outs[0] + outs[1]
    ref_grads = torch.autograd.grad(ref, list(ref_leaves.values()), grad_out.double())
    assert out.shape == (batch, dim, length) and pair.shape == (2, batch, dim, length)
    assert rel_err(out, ref) <= 1e-5
    assert rel_err(pair[1], outs[1]) <= 1e-5
    for name, g, rg in zip(leaves, grads, ref_grads):
        assert rel_err(g, rg) <= 1e-5, name


@pytest.mark.parametrize("reverse", [False, True])
def test_state_contiguous_B_C_views(reverse):
    """B and C as (L, N)-row views (how a token-major x_proj output arrives) are read in
    place, and give the same outputs and gradients as contiguous (N, L) copies."""
    inputs = make_inputs(2, 4, 19, 4, None, torch.float32, True)
    rows = {k: inputs[k].transpose(-1, -2).contiguous().requires_grad_() for k in ("B", "C")}
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items() if k not in rows}
    args = {**leaves, **{k: v.transpose(-1, -2) for k, v in rows.items()}}
    assert args["B"].stride(-2) == 1
    out = selective_scan(**args, delta_softplus=True, reverse=reverse, backend="triton")
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, [*rows.values(), *leaves.values()], grad_out)
    ref_out, _, ref_grads = reference(inputs, grad_out, torch.zeros(2, 4, 4, device=DEVICE),
                                      delta_softplus=True, reverse=reverse)
    assert rel_err(out, ref_out) <= 1e-5
    for name, g in zip([*rows, *leaves], grads):
        expect = ref_grads[name].transpose(-1, -2) if name in rows else ref_grads[name]
        assert rel_err(g, expect) <= 1e-5, name


def test_reverse_reads_time_backwards():
    """A reverse scan equals the forward scan of time-flipped inputs, flipped back."""
    inputs = make_inputs(1, 3, 13, 2, None, torch.float64, True)
    out = selective_scan_ref(**inputs, delta_softplus=True, reverse=True)
    flipped = {k: (v.flip(-1) if v is not None and v.dim() == 3 else v) for k, v in inputs.items()}
    assert rel_err(out, selective_scan_ref(**flipped, delta_softplus=True).flip(-1)) < 1e-12
    for backend in ("torch", "triton"):
        got = selective_scan(**{k: None if v is None else v.float() for k, v in inputs.items()},
                             delta_softplus=True, reverse=True, backend=backend)
        assert rel_err(got, out) <= 1e-5


def test_torch_path_keeps_memory_per_block(monkeypatch):
    """The torch path never builds a (batch, dim, L, N) tensor: its largest working
    tensor is one block's, whatever L is."""
    monkeypatch.setattr(scan_torch, "_BLOCK_ELEMENTS", 1 << 12)
    seen = []
    real = scan_torch._hillis_steele

    def spy(a, x, reverse):
        seen.append(a.numel())
        return real(a, x, reverse)

    monkeypatch.setattr(scan_torch, "_hillis_steele", spy)
    inputs = make_inputs(1, 4, 4096, 4, None, torch.float32, False)
    selective_scan(**{k: None if v is None else v.cpu() for k, v in inputs.items()}, backend="torch")
    assert len(seen) > 1 and max(seen) <= 1 << 12 < 4 * 4096 * 4


def test_bad_backend_and_empty_sequence():
    inputs = make_inputs(1, 2, 3, 2, None, torch.float32, False)
    with pytest.raises(ValueError, match="backend"):
        selective_scan(**inputs, backend="cuda")
    u = torch.zeros(1, 2, 0)
    with pytest.raises(ValueError, match="L >= 1"):
        selective_scan(u, u, inputs["A"], torch.zeros(1, 2, 0), torch.zeros(1, 2, 0), backend="torch")


@pytest.mark.parametrize("length,padded", [(19, 32), (9, 16), (16, 16)])
def test_padded_rows_scan_only_the_valid_length(length, padded):
    """scan_forward on rows padded past valid_length (as the inference forward lays out an
    odd window) gives, on the valid positions, the float64 reference of the unpadded rows,
    in both directions of a stacked call, whatever finite values the padding holds; the
    last state of the forward direction is the state at valid_length - 1."""
    per_dir = [make_inputs(2, 4, padded, 3, None, torch.float32, True) for _ in range(2)]
    stacked = {k: torch.stack([per_dir[0][k], per_dir[1][k]]) for k in per_dir[0]}
    stacked["B"], stacked["C"] = stacked["B"].unsqueeze(2), stacked["C"].unsqueeze(2)
    inputs = scan_triton.scan_inputs(*(stacked[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")))
    out, last, state = scan_triton.scan_forward(*inputs, True, 0, save=False, valid_length=length)
    assert state is None and out.shape[-1] == padded
    for k in range(2):
        args = {n: stacked[n][k].double()[..., :length] if stacked[n].dim() > 3 else stacked[n][k].double()
                for n in stacked}
        args["B"], args["C"] = args["B"][:, 0], args["C"][:, 0]
        ref, ref_last = selective_scan_ref(**args, delta_softplus=True, reverse=k == 1, return_last_state=True)
        assert rel_err(out[k, ..., :length], ref) <= 1e-5
        assert rel_err(last[k], ref_last) <= 1e-5
    with pytest.raises(ValueError, match="valid_length"):
        scan_triton.scan_forward(*inputs, True, 0, save=True, valid_length=length - 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("save,length,valid", [(True, 21, 21), (False, 21, 21), (False, 32, 19)])
def test_added_directions_equal_the_sum_of_both_outputs(dtype, save, length, valid):
    """add_directions: the second direction's launch adds its output into the first's. The
    result must equal out[0] + out[1] of the separate outputs exactly (the same rounding),
    at several segments (the saving forward's summary pass and chain) and in padded rows.
    Triton's CPU interpreter rounds fp32 -> bf16 towards zero, PyTorch to nearest even:
    there bf16 sums agree to the two roundings' error."""
    per_dir = [make_inputs(2, 4, length, 3, None, dtype, True) for _ in range(2)]
    stacked = {k: torch.stack([per_dir[0][k], per_dir[1][k]]) for k in per_dir[0]}
    stacked["B"], stacked["C"] = stacked["B"].unsqueeze(2), stacked["C"].unsqueeze(2)
    inputs = scan_triton.scan_inputs(*(stacked[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")))
    kw = dict(save=save, valid_length=valid)
    out, last, _ = scan_triton.scan_forward(*inputs, True, 0, **kw)
    added, added_last, state = scan_triton.scan_forward(*inputs, True, 0, add_directions=True, **kw)
    assert added.shape == (1, *out.shape[1:]) and added.dtype == dtype and (state is not None) == save
    got, want = added[0, ..., :valid], (out[0] + out[1])[..., :valid]
    if dtype == torch.bfloat16 and interpreting():
        bound = 2 ** -6 * (out[0].float().abs() + out[1].float().abs())[..., :valid]
        assert ((got.float() - want.float()).abs() <= bound).all()
    else:
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(added_last, last, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the fast softplus and gate run on the GPU only")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fast_softplus_and_gate_of_half_inputs_within_their_rounding(monkeypatch, dtype):
    """Half-precision inputs take softplus and the z gate on the special-function unit
    (scan_triton.FAST_SOFTPLUS). Against the accurate formulas on the same inputs, the
    output and every gradient differ by less than half-precision rounding; delta spans both
    softplus branches (below and above 20) and large |z|."""
    g = torch.Generator(device="cuda").manual_seed(7)
    batch, dim, length, nstate = 2, 64, 3000, 16
    r = lambda *s: torch.randn(*s, generator=g, device="cuda")  # noqa: E731
    x = dict(u=r(batch, dim, length).to(dtype), delta=(6 * r(batch, dim, length) - 4).to(dtype),
             A=-torch.rand(dim, nstate, generator=g, device="cuda") * 4 - 0.1,
             B=r(batch, nstate, length).to(dtype), C=r(batch, nstate, length).to(dtype), D=r(dim),
             z=(4 * r(batch, dim, length)).to(dtype), delta_bias=r(dim))
    x["delta"][0, 0, :100] = 30.0  # softplus(x) = x above 20
    gout = r(batch, dim, length).to(dtype)
    results = {}
    for fast in (True, False):
        monkeypatch.setattr(scan_triton, "FAST_SOFTPLUS", fast)
        leaves = {k: v.detach().clone().requires_grad_() for k, v in x.items()}
        for rev in (False, True):
            out = selective_scan(**leaves, delta_softplus=True, reverse=rev, backend="triton")
            grads = torch.autograd.grad(out, list(leaves.values()), gout)
            results[(fast, rev)] = (out, dict(zip(leaves, grads)))
    for rev in (False, True):
        (out, grads), (acc, acc_grads) = results[(True, rev)], results[(False, rev)]
        assert rel_err(out, acc) <= 4e-3
        for name in grads:
            assert rel_err(grads[name], acc_grads[name]) <= 4e-3, name


@pytest.mark.parametrize("rows, length", [(512, 131072), (2048, 131072), (3072, 131072), (8192, 16384), (512, 2**20),
                                          (64, 1000)])
def test_saved_segments_keep_the_least_state_memory(rows, length):
    # segment start states + backward carries shrink with the segment, the backward's
    # chunk-start scratch grows with it: the pick is the longest length within the slack of
    # the least, over every power of two in range (a brute-force recount here)
    programs, block_d, block_t, nstate = 1056, 16, 4, 16
    lo, hi = 32, triton.next_power_of_2(length)
    seg = scan_triton._least_memory_seg_len(rows, length, nstate, programs, block_d, block_t, lo, hi)
    floats = {s: 2 * -(-length // s) * nstate * rows + programs * (s // block_t) * nstate * block_d
              for s in (2**k for k in range(5, hi.bit_length())) if lo <= s <= hi}
    least = min(floats.values())
    assert seg in floats and floats[seg] <= least * (1 + scan_triton.SEG_MEMORY_SLACK)
    assert all(s < seg for s, f in floats.items() if f <= least * (1 + scan_triton.SEG_MEMORY_SLACK) and s != seg)
    # against the old fixed 128: never more memory
    if 128 in floats:
        assert floats[seg] <= floats[128] * (1 + scan_triton.SEG_MEMORY_SLACK)


@pytest.mark.parametrize("save,length,valid", [(False, 19, 19), (False, 24, 19), (True, 21, 21)])
def test_lane_rows_forward_is_the_same_scan(monkeypatch, save, length, valid):
    """LANE_ROWS (rows that cannot be loaded as whole vectors) changes only how the forward's
    chunk tiles are loaded and stored: its outputs equal the default loads' exactly, in both
    directions of a stacked call, with the directions added or not, and match the float64
    reference (rows of 24 fp32, 96 bytes, are whole vectors and keep the default loads)."""
    per_dir = [make_inputs(2, 4, length, 3, None, torch.float32, True) for _ in range(2)]
    stacked = {k: torch.stack([per_dir[0][k], per_dir[1][k]]) for k in per_dir[0]}
    stacked["B"], stacked["C"] = stacked["B"].unsqueeze(2), stacked["C"].unsqueeze(2)
    inputs = scan_triton.scan_inputs(*(stacked[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")))
    outs = {}
    for on in (False, True):
        monkeypatch.setattr(scan_triton, "LANE_ROWS", on)
        for add in (False, True):
            outs[on, add] = scan_triton.scan_forward(*inputs, True, 0, save=save, valid_length=valid,
                                                     add_directions=add)[:2]
    for add in (False, True):
        for a, b in zip(outs[False, add], outs[True, add]):
            torch.testing.assert_close(a[..., :valid], b[..., :valid], rtol=0, atol=0)
    out = outs[True, False][0]
    for k in range(2):
        args = {n: stacked[n][k].double()[..., :valid] if stacked[n].dim() > 3 else stacked[n][k].double()
                for n in stacked}
        args["B"], args["C"] = args["B"][:, 0], args["C"][:, 0]
        ref = selective_scan_ref(**args, delta_softplus=True, reverse=k == 1)
        assert rel_err(out[k, ..., :valid], ref) <= 1e-5
