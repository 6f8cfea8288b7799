"""Autograd wrappers around the Triton selective-scan kernels (``genomamba.kernels``)."""

from __future__ import annotations

import os

import torch
import triton

from genomamba.ops.kernels.scan import _scan_bwd_kernel, _scan_fwd_kernel, _segment_chain_kernel
from genomamba.ops.backend import interpreting


#: Fill every output buffer with NaN before the kernels run (tests set this), so an
#: element a kernel forgets to write fails the comparison instead of reading stale memory.
POISON_OUTPUTS = False


def _alloc(shape_or_like, **kw):
    t = torch.empty_like(shape_or_like) if isinstance(shape_or_like, torch.Tensor) else torch.empty(shape_or_like, **kw)
    if POISON_OUTPUTS and t.dtype.is_floating_point:
        t.fill_(float("nan"))
    return t


def _prev_pow2(n: int) -> int:
    return 1 << max(0, n.bit_length() - 1)


def _sm_count(device) -> int:
    if interpreting() or device.type != "cuda":
        return 1
    return torch.cuda.get_device_properties(device).multi_processor_count


#: A forward saved for a backward takes the longest segment whose state memory is within this
#: fraction of the least (see _least_memory_seg_len): on the H200 longer segments were as fast
#: or up to 3% faster at every benchmark row (benchmarks/RESULTS.md).
SEG_MEMORY_SLACK = 0.02


def _least_memory_seg_len(n_rows, length, nstate, programs, bwd_block_d, bwd_block_t, lo, hi):
    """The segment length (a power of two in [lo, hi]) that keeps and allocates the least
    state memory for a backward: the segment start states and the backward's carries
    (2 x n_seg x N x rows, fp32) shrink with longer segments, the backward's chunk-start
    scratch (programs x SEG_LEN / BWD_BLOCK_T x N x BWD_BLOCK_D, fp32) grows with them.
    Of the lengths within SEG_MEMORY_SLACK of the least, the longest."""
    def floats(seg):
        return 2 * -(-length // seg) * nstate * n_rows + programs * (seg // bwd_block_t) * \
            triton.next_power_of_2(nstate) * bwd_block_d

    lengths = [lo]
    while lengths[-1] * 2 <= hi:
        lengths.append(lengths[-1] * 2)
    least = min(floats(seg) for seg in lengths)
    return max(seg for seg in lengths if floats(seg) <= least * (1 + SEG_MEMORY_SLACK))


#: WARPS, BLOCK_T, SEG_LEN (0: auto), BWD_PER_SM (0: what fits), BWD_BLOCK_T, BWD_LANES_D,
#: FWD_MAXNREG, BWD_MAXNREG (0: no cap): measured best on the H100 (benchmarks/tune_scan.py)
DEFAULT_CONFIG = [1, 8, 0, 0, 4, 16, 0, 0]


def _launch_config(batch, dim, length, dim_per_group, n_dirs, nstate, device, training=True):
    """Launch settings: warps, channels per program and chunk length of the forward and
    the backward, segment length, the backward's persistent grid, and register caps.

    The forward runs one channel per thread (BLOCK_D = 32 * warps). The backward keeps
    more per step in registers: it walks shorter chunks and may split each channel's
    states over 2 lanes (16 channels per warp). Segments are short enough for about 8 programs per SM; the
    backward's persistent grid is what fits on the SMs at once under its register cap.
    A forward saved for a backward takes no longer segments than the least state memory
    asks for (_least_memory_seg_len). ``training=False`` (a forward that saves nothing) lifts
    that cap: segments then only split what the rows alone cannot spread over the SMs, and a
    batch of short windows runs in one pass instead of a summary pass, a chain and a second pass.
    Tiny tiles under the interpreter, so several segments and chunks chain at test sizes.
    GENOMAMBA_SCAN_TILE="WARPS,BLOCK_T,SEG_LEN,BWD_PER_SM,BWD_BLOCK_T,BWD_LANES_D,FWD_MAXNREG,BWD_MAXNREG"
    overrides them (0 keeps a default; a register cap of 0 in a spec means none) for tuning runs."""
    if interpreting():
        return dict(warps=1, block_d=2, block_t=4, seg_len=8, bwd_programs=4, bwd_block_t=2, bwd_block_d=2,
                    fwd_maxnreg=None, bwd_maxnreg=None)
    cfg = DEFAULT_CONFIG
    spec = os.environ.get("GENOMAMBA_SCAN_TILE")
    if spec:
        fields = [int(v) for v in spec.split(",")]
        # 0 keeps a default, but a register cap of 0 means none
        cfg = [f if (f or i in (6, 7)) else d for i, (f, d) in enumerate(zip(fields, cfg))] + list(cfg[len(fields):])
    warps, block_t, seg_len, per_sm, bwd_block_t, lanes_d, fwd_maxnreg, bwd_maxnreg = cfg
    # programs that fit on an SM at once: 64K registers / (registers x 32 x warps)
    per_sm = per_sm or max(1, 65536 // ((bwd_maxnreg or 255) * 32 * warps))
    block_d, bwd_block_d = _fit_block(32 * warps, dim, dim_per_group), _fit_block(lanes_d * warps, dim, dim_per_group)
    sms = _sm_count(device)
    if not seg_len:
        rows = n_dirs * batch * -(-dim // block_d)
        seg_len = _prev_pow2(max(1, rows * length // (8 * sms)))
        lo, hi = 4 * max(block_t, bwd_block_t), max(triton.next_power_of_2(length), block_t, bwd_block_t)
        if training:  # no longer than the backward's least state memory asks for
            seg_len = min(seg_len, _least_memory_seg_len(n_dirs * batch * dim, length, nstate, per_sm * sms,
                                                          bwd_block_d, bwd_block_t, lo, hi))
        seg_len = min(max(seg_len, lo), hi)
    return dict(warps=warps, block_d=block_d, block_t=block_t, seg_len=seg_len, bwd_programs=per_sm * sms,
                bwd_block_t=bwd_block_t, bwd_block_d=bwd_block_d, fwd_maxnreg=fwd_maxnreg or None,
                bwd_maxnreg=bwd_maxnreg or None)


def _fit_block(block_d, dim, dim_per_group):
    """Largest power of two <= block_d that divides a group and does not exceed dim much."""
    while block_d > 1 and (dim_per_group % block_d or block_d > triton.next_power_of_2(dim)):
        block_d //= 2
    return block_d


def scan_inputs(u, delta, A, B, C, D, z, delta_bias, keep_layout=False):
    """The inputs laid out as the kernels read them (copies only where needed).

    ``keep_layout`` (a forward that saves nothing): u and delta may be any dense layout with
    unit stride along L when they share their strides (the kernels read them, and write the
    output, through u's strides), and z any layout with unit stride along L."""
    if not (keep_layout and u.stride(-1) == 1 and delta.stride() == u.stride() and _dense(u)):
        u, delta = u.contiguous(), delta.contiguous()
    A = A.contiguous()
    B, C = _time_or_state_contiguous(B), _time_or_state_contiguous(C)
    if z is not None and not (keep_layout and z.stride(-1) == 1):
        z = z.contiguous()
    D, delta_bias = (None if t is None else t.contiguous() for t in (D, delta_bias))
    return u, delta, A, B, C, D, z, delta_bias


def _dense(t):
    """Whether ``t`` fills its memory exactly (a permutation of a contiguous layout), so that
    ``empty_like`` gives its output the same strides."""
    order = sorted(range(t.dim()), key=lambda i: t.stride(i))
    expected = 1
    for i in order:
        if t.shape[i] != 1 and t.stride(i) != expected:
            return False
        expected *= t.shape[i]
    return True


def scan_forward(u, delta, A, B, C, D, z, delta_bias, softplus, rev_base, save, valid_length=None,
                 add_directions=False):
    """Direction-stacked scan, no autograd, on ``scan_inputs`` (see ``_ScanTriton``).

    Returns (out (R, b, d, L), last state (R, b, d, N) fp32, state): ``state`` is what
    ``scan_backward`` needs besides the inputs, (hs, config), or None unless ``save``.
    ``add_directions``: out is (1, b, d, L), the directions' outputs summed (each later
    direction's launch adds its output into the first's, rounded as ``out[0] + out[1]``
    rounds; no (R, b, d, L) buffer and no separate add).
    ``valid_length`` (a forward that saves nothing): the inputs are rows padded to L, the
    scan runs over their first ``valid_length`` positions (both directions: the reverse
    scan starts at valid_length - 1), and out beyond them is not meaningful. The padding
    must hold finite values. A row length that is a multiple of 16 lets the kernel load
    and store whole vectors, which an odd window length (1,023 bases) otherwise prevents."""
    R, batch, dim, length = u.shape
    valid = length if valid_length is None else int(valid_length)
    if not 1 <= valid <= length or (save and valid != length):
        raise ValueError(f"valid_length {valid_length} must be in [1, {length}] (and equal it when saving)")
    nstate = A.shape[-1]
    groups = B.shape[2]
    cfg = _launch_config(batch, dim, length, dim // groups, R, nstate, u.device, training=save)
    warps, block_d, block_t, seg_len = cfg["warps"], cfg["block_d"], cfg["block_t"], cfg["seg_len"]
    n_seg = -(-length // seg_len)
    f32 = dict(device=u.device, dtype=torch.float32)
    prefetch = _prefetch(save)
    lane_rows = LANE_ROWS and (length * u.element_size()) % 16 != 0
    out = _alloc(u[:1] if add_directions else u)
    last = _alloc((R, batch, dim, nstate), **f32)
    n_rows = R * batch * dim
    hs = torch.empty((n_seg, nstate, n_rows), **f32)  # segment start states
    sdt = torch.empty((n_seg, n_rows), **f32)  # summed delta per segment
    grid = (batch * -(-dim // block_d) * n_seg,)
    common = _common_args(u, A, B, D, z, R, dim // groups)
    consts = dict(_constexprs(nstate, block_d, block_t, seg_len, D, z, delta_bias, softplus, u.dtype),
                  LANE_ROWS=lane_rows)
    args = (u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, out, last, hs, sdt,
            batch, dim, length, valid, n_seg, n_rows)
    # one launch per direction: the scan direction is a compile-time constant
    if n_seg > 1:
        for r in range(R):
            _scan_fwd_kernel[grid](*args, *common, r, 1, **consts, REV=r ^ rev_base, SUMMARY=True,
                                   PREFETCH=prefetch, ADD_OUT=0, num_warps=warps, **_cap(cfg["fwd_maxnreg"]))
        _chain(hs, sdt, A)
    # a later direction adds into the first's out: an fp32 out on the GPU with an add the compiler
    # cannot fuse into an FMA (2); a half-precision one is rounded before the add anyway (1)
    add_out = (2 if out.dtype == torch.float32 and not interpreting() else 1) if add_directions else 0
    for r in range(R):
        _scan_fwd_kernel[grid](*args, *common, r, 1, **consts, REV=r ^ rev_base, SUMMARY=False,
                               PREFETCH=prefetch, ADD_OUT=add_out if r > 0 else 0, num_warps=warps,
                               **_cap(cfg["fwd_maxnreg"]))
    if not save:
        return out, last, None
    config = (bool(softplus), rev_base, warps, cfg["bwd_block_d"], cfg["bwd_block_t"], seg_len,
              cfg["bwd_programs"], cfg["bwd_maxnreg"])
    return out, last, (hs, config)


#: A forward over rows whose length is not a multiple of 16 bytes (a 1,023-base window) loads
#: and stores its chunk tiles in the scan's own layout (the kernel's LANE_ROWS): Triton cannot
#: load such rows as whole vectors and otherwise lays the loads out with time across lanes.
#: Statically (Triton 3.6, sm_90, `benchmarks/compile_stats.py --score 256,1023`) the 1k
#: scoring forward drops from 248 to 168 registers (150 without prefetch), SASS 2,200 -> 1,848;
#: not yet timed on a GPU, so off unless GENOMAMBA_SCAN_LANE_ROWS=1 (benchmarks/RESULTS.md).
LANE_ROWS = os.environ.get("GENOMAMBA_SCAN_LANE_ROWS", "0") == "1"


def _prefetch(save):
    """Whether the forward loads a chunk ahead: for a forward that saves nothing (measured on
    the H200: the scoring forward's scan 22% faster, a training forward's 7% slower, whose
    many segments already hide the loads' latency). GENOMAMBA_SCAN_PREFETCH=0/1 overrides."""
    spec = os.environ.get("GENOMAMBA_SCAN_PREFETCH")
    return (not save) if not spec else spec == "1"


def scan_backward(u, delta, A, B, C, D, z, delta_bias, hs, config, dout, dlast):
    """Gradients of ``scan_forward`` for dout (R, b, d, L; a stride-0 expand of one
    (b, d, L) gradient is read in place) and dlast (or None):
    (du, ddelta, dA, dB, dC, dD, dz, ddelta_bias), each None where its input is None;
    a z shared by the directions gets the sum of both directions' dz."""
    softplus, rev_base, warps, block_d, block_t, seg_len, bwd_programs, maxnreg = config
    R, batch, dim, length = u.shape
    nstate = A.shape[-1]
    groups = B.shape[2]
    n_seg, _, n_rows = hs.shape
    f32 = dict(device=u.device, dtype=torch.float32)
    if dout.stride()[1:] != u.stride()[1:]:  # read with u's strides (and its own direction stride)
        dout = dout.contiguous()
    du = _alloc(u)
    ddelta = _alloc(delta)
    dz = _alloc(z) if z is not None and z.shape[0] == R else None
    if z is not None and dz is None:  # z shared by directions: one buffer per direction, summed
        dz = _alloc((R, *z.shape[1:]), device=z.device, dtype=z.dtype)
    # laid out like B: (N, L) or (L, N) rows
    dB = torch.zeros((*B.shape[:3], length, nstate), **f32).transpose(-1, -2) if B.stride(-2) == 1 \
        else torch.zeros(B.shape, **f32)
    dC = torch.zeros_like(dB)
    # summed over batch and segments by the kernel's atomics, like dB and dC
    dA = torch.zeros((R, dim, nstate), **f32)
    dD = torch.zeros((R, dim), **f32) if D is not None else None
    dbias = torch.zeros((R, dim), **f32) if delta_bias is not None else None
    carry = torch.empty_like(hs)  # carry[s]: the carry entering segment s at its end
    n_blocks = batch * -(-dim // block_d)
    n_work = n_blocks * n_seg  # per direction
    programs = min(n_work, bwd_programs)
    flags = torch.zeros((R, n_seg, n_blocks), device=u.device, dtype=torch.int32)  # carry[s] is set
    counter = torch.zeros((R,), device=u.device, dtype=torch.int32)  # work items claimed
    scratch = torch.empty((programs, seg_len // block_t, triton.next_power_of_2(nstate), block_d), **f32)
    common = _common_args(u, A, B, D, z, R, dim // groups)
    consts = _constexprs(nstate, block_d, block_t, seg_len, D, z, delta_bias, softplus, u.dtype)
    consts["LANE_SHUFFLE"] = not interpreting()  # warp shuffles in inline PTX: GPU only
    args = (u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, hs, carry, scratch, dout,
            dlast.contiguous() if dlast is not None else u, flags, counter, du, ddelta, dz if dz is not None else u, dB, dC, dA,
            dD if dD is not None else dA, dbias if dbias is not None else dA,
            batch, dim, length, n_seg, n_rows)
    tail = (n_work, 0 if dz is None else dz.stride(0), dout.stride(0), dB.stride(-2), dB.stride(-1))
    for r in range(R):
        _scan_bwd_kernel[(programs,)](*args, *common, r, 1, *tail, **consts, REV=r ^ rev_base,
                                      HAS_DLAST=dlast is not None, num_warps=warps, **_cap(maxnreg))
    if z is not None and z.shape[0] != R:
        dz = dz.sum(0, keepdim=True)
    return (du, ddelta, dA.to(A.dtype), dB.to(B.dtype), dC.to(C.dtype), None if D is None else dD.to(D.dtype), dz,
            None if delta_bias is None else dbias.to(delta_bias.dtype))


class _ScanTriton(torch.autograd.Function):
    """Direction-stacked scan. u, delta: (R, b, d, L); A: (R, d, N); B, C: (R, b, g, N, L);
    D, bias: (R, d) or None; z: (R, b, d, L) or (1, b, d, L) shared, or None.
    Direction r is reversed when r xor rev_base is 1."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus, rev_base, grad):
        inputs = scan_inputs(u, delta, A, B, C, D, z, delta_bias)
        # ctx.needs_input_grad is set under no_grad too: ``grad`` says whether autograd records
        out, last, state = scan_forward(*inputs, softplus, rev_base, save=grad and any(ctx.needs_input_grad))
        if state is not None:
            hs, ctx.config = state
            ctx.save_for_backward(*inputs, hs)
        return out, last

    @staticmethod
    def backward(ctx, dout, dlast):
        return (*scan_backward(*ctx.saved_tensors, ctx.config, dout, dlast), None, None, None)


def _time_or_state_contiguous(x):
    """B or C (..., N, L) as the kernels read it: as is when the L axis or the N axis is
    contiguous (e.g. the model's x_proj output, an (L, N) row view), otherwise a copy."""
    if x.stride(-1) == 1 or x.stride(-2) == 1:
        return x
    return x.contiguous()


def _cap(maxnreg):
    """Launch option capping registers per thread (ptxas then fits more warps per SM)."""
    return {} if maxnreg is None else {"maxnreg": maxnreg}


#: Segments the chain pass reads at once (a tile per thread, so its loads do not wait on the
#: chain); 2 under the interpreter, so several tiles chain at test sizes.
CHAIN_SEG_BLOCK = 16


def _chain(buf, sdt, A):
    n_seg, nstate, n_rows = buf.shape
    R, dim, _ = A.shape
    block = 32  # one warp, a row per lane, segments inside the thread
    _segment_chain_kernel[(nstate, -(-n_rows // block))](
        buf, sdt, A, n_rows, n_rows // (R * dim), dim, n_seg, A.stride(0),
        NSTATE=nstate, BLOCK=block, SEG_BLOCK=2 if interpreting() else CHAIN_SEG_BLOCK, num_warps=1,
    )


def _common_args(u, A, B, D, z, R, dim_per_group):
    """Arguments after n_seg shared by the forward and backward kernels (then the
    direction launched and the unit `one`)."""
    return (dim_per_group, u.stride(0), u.stride(1), u.stride(2), *_z_strides(z, R),
            A.stride(0), B.stride(0), B.stride(1), B.stride(2), B.stride(3), B.stride(4),
            0 if D is None else D.stride(0))


def _constexprs(nstate, block_d, block_t, seg_len, D, z, delta_bias, softplus, dtype):
    """SOFTPLUS: 0 none, 1 log(1 + exp), 2 the special-function-unit form, for half-precision
    inputs on the GPU (its error, about 1e-5 relative, is far below their rounding)."""
    fast = dtype in (torch.bfloat16, torch.float16) and not interpreting() and FAST_SOFTPLUS
    return dict(NSTATE=nstate, NSTATE_P2=triton.next_power_of_2(nstate), BLOCK_D=block_d, BLOCK_T=block_t,
                SEG_LEN=seg_len, HAS_D=D is not None, HAS_Z=z is not None,
                HAS_BIAS=delta_bias is not None, SOFTPLUS=(2 if fast else 1) if softplus else 0)


#: Use the fast softplus and gate for half-precision inputs; GENOMAMBA_SCAN_FAST_MATH=0 turns
#: them off (for A/B runs; tests set this)
FAST_SOFTPLUS = os.environ.get("GENOMAMBA_SCAN_FAST_MATH", "1") != "0"


def _z_strides(z, R):
    if z is None:
        return (0, 0, 0)
    return (z.stride(0) if z.shape[0] == R else 0, z.stride(1), z.stride(2))


def _check(u, delta, A, B, C):
    if u.shape[-1] == 0:
        raise ValueError("selective_scan needs L >= 1")
    if B.dim() != C.dim() or B.shape != C.shape:
        raise ValueError(f"B and C must have the same shape, got {tuple(B.shape)} and {tuple(C.shape)}")


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          reverse=False, return_last_state=False):
    """Single-direction Triton scan (see ``genomamba.ops.selective_scan``)."""
    _check(u, delta, A, B, C)
    if B.dim() == 3:
        B, C = B.unsqueeze(1), C.unsqueeze(1)
    out, last = _ScanTriton.apply(
        u.unsqueeze(0), delta.unsqueeze(0), A.unsqueeze(0), B.unsqueeze(0), C.unsqueeze(0),
        None if D is None else D.unsqueeze(0), None if z is None else z.unsqueeze(0),
        None if delta_bias is None else delta_bias.unsqueeze(0), bool(delta_softplus), int(bool(reverse)),
        torch.is_grad_enabled(),
    )
    # squeeze, not out[0]: the backward of a view is a view, while indexing's backward fills a
    # zero tensor of the stacked shape and copies the gradient into it (one more output's memory)
    return (out.squeeze(0), last.squeeze(0)) if return_last_state else out.squeeze(0)


def selective_scan_bidirectional_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                                        delta_softplus=False, combine="add"):
    """Fused BiMamba scan: direction 0 forward, direction 1 reverse, on direction-stacked
    inputs, without flips (each kernel pass launches once per direction)."""
    _check(u[0], delta[0], A[0], B[0], C[0])
    if B.dim() == 4:
        B, C = B.unsqueeze(2), C.unsqueeze(2)
    if z is not None and z.dim() == 3:
        z = z.unsqueeze(0)  # shared by both directions (stride 0 over the direction axis)
    out, _ = _ScanTriton.apply(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), 0, torch.is_grad_enabled())
    # sum(0), not out[0] + out[1]: its backward is a stride-0 expand of the gradient, which
    # the backward kernel reads in place, instead of two zero-filled stacked-shape copies
    return out.sum(0) if combine == "add" else out
