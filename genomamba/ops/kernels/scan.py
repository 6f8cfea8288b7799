"""Triton selective-scan kernels (Mamba-1), forward and backward.

Design: per-thread sequential recurrences, the sequence split into segments.

- A program owns (batch b, BLOCK_D channels, one segment of SEG_LEN scan steps) of one
  direction. Each thread owns one channel and keeps its fp32 state h (NSTATE values)
  in registers (the backward may split them over 2 lanes). The segment is walked in
  chunks of BLOCK_T steps; a chunk of each per-channel input is one (BLOCK_T, BLOCK_D)
  load, and the state-sized work is done on (BLOCK_T, N, BLOCK_D) tiles: time first,
  so Triton's default layout puts lanes along channels (then states) and time inside
  the thread. The recurrences are written out step by step over the chunk with
  compile-time step indices, so picking one step out of a tile is a register read: no
  shuffles, no shared memory in the recurrence. B and C chunks are loaded once per
  program and serve all its channels; they may be (N, L) or (L, N) rows.
- Segments make the GPU busy when batch x dim is small: a summary pass runs every
  segment from a zero state and keeps its end state and its summed delta; a chain
  pass (one thread per (channel, state), segments read in tiles and scanned in
  registers) turns those into every segment's true start state,
  h_start(s+1) = exp(A * sum(delta over s)) * h_start(s) + end(s); the main pass
  reruns each segment from its start state and writes the output. The state buffers
  are (segment, state, row), so loads along channels are contiguous.
- The backward computes the adjoint dh_p = C_p dy_p + a_{p+1} dh_{p+1}, which runs
  against the scan direction, in one pass per direction. A program takes a segment (the
  last segment first) and sweeps it forwards from its saved start state: it keeps the
  chunk-start states in a program-private scratch and, by a running product of the
  decays, the carry the segment passes on from a zero carry. With the carry entering
  its end (from the program of the segment after it, through a flag in global memory:
  a chained scan over segments, whose wait is short because that program started
  earlier), it passes the true carry on, then walks its chunks backwards, recomputing
  each chunk's states. dB and dC are sums over channels, which lie across lanes: they
  are summed by a halving exchange between lanes (_add_lane_sums), then added with
  fp32 atomics.

Directions: scan position p maps to time t = p (forward) or t = L-1-p (reverse).
Tiles are always loaded in ascending memory order; a reverse scan walks the steps of
each chunk the other way. Nothing is flipped in memory. The direction (REV) is a
compile-time constant, so a direction-stacked call (BiMamba's forward scan of one
parameter set and the reverse scan of another) launches each pass once per direction.

Ragged tails and positions outside [0, L) are padded with (decay 1, input 0) after
bias and softplus, so padding never changes a state.
"""

import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)


@triton.jit
def _sfu(x, OP: tl.constexpr):
    # one fp32 op on the special-function unit (GPU only, inline PTX): "lg2" (log2, absolute
    # error about 2^-22) or "rcp" (1 / x, about 1 ulp)
    return tl.inline_asm_elementwise(OP + ".approx.ftz.f32 $0, $1;", "=f,f", [x], dtype=tl.float32, is_pure=True,
                                     pack=1)


@triton.jit
def _add_rounded(a, b, PTX: tl.constexpr):
    # a + b rounded on its own, as an add of two stored values is: on the GPU (PTX) an add.rn,
    # which the compiler never fuses with the multiply that made a (the gate) into an FMA
    if PTX:
        return tl.inline_asm_elementwise("add.rn.f32 $0, $1, $2;", "=f,f,f", [a, b], dtype=tl.float32,
                                         is_pure=True, pack=1)
    return a + b


@triton.jit
def _softplus(x, FAST: tl.constexpr):
    # FAST (half-precision inputs, GPU): one ex2 and one lg2 on the special-function unit
    # instead of a 12-term polynomial log; the result's error (about 1e-5 relative for small
    # values) is far below bf16's rounding (4e-3). Else log(1 + exp(x)) as before.
    if FAST:
        return tl.where(x <= 20.0, _sfu(1.0 + tl.exp2(x * LOG2E), "lg2") * LN2, x)
    return tl.where(x <= 20.0, tl.log(1.0 + tl.exp(x)), x)


@triton.jit
def _negative_zero():
    # -0.0 as a constant: a literal -0.0 becomes +0.0 in Triton 3.6's IR (the constant is
    # cached by value, and -0.0 == 0.0), and x + 0.0 is not foldable (it turns -0.0 into +0.0),
    # so every pick by masked sum cost an add; the bit pattern keeps the sign
    return tl.full((1,), -2147483648, tl.int32).to(tl.float32, bitcast=True)


@triton.jit
def _step(x, offs_t, j):
    # x[j] of a (BLOCK_T, ., .) tile. Time lies inside the thread and j is a compile-time
    # constant, so this folds to a register pick (-0.0 is the exact additive identity).
    return tl.sum(tl.where(offs_t[:, None, None] == j, x, _negative_zero()), axis=0)


@triton.jit
def _put(x, offs_t, j, v):
    # x with x[j] = v
    return tl.where(offs_t[:, None, None] == j, v[None, :, :], x)


@triton.jit
def _program_coords(work, n_seg, dim, BLOCK_D: tl.constexpr):
    # work index -> (b, first channel, segment); segments vary fastest
    seg = work % n_seg
    rest = work // n_seg
    n_dblocks = tl.cdiv(dim, BLOCK_D)
    return rest // n_dblocks, (rest % n_dblocks) * BLOCK_D, seg


@triton.jit
def _channel_block(d0, b, direction, dim, mask_n, BLOCK_D: tl.constexpr):
    # A program's channels d0 .. d0 + BLOCK_D of row b: offsets, masks (channels; states x
    # channels) and the int64 direction, row and channel indices for addressing
    offs_d = d0 + tl.arange(0, BLOCK_D)
    mask_d = offs_d < dim
    mask_dn = mask_n[:, None] & mask_d[None, :]
    return offs_d, mask_d, mask_dn, direction.to(tl.int64), b.to(tl.int64), offs_d.to(tl.int64)


@triton.jit
def _channel_params(D_ptr, bias_ptr, A_ptr, dir64, s_D_dir, s_A_dir, offs_d, offs_n, mask_d, mask_dn, one,
                    NSTATE: tl.constexpr, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr):
    # delta_bias and D per channel (zeros where absent), fp32, and A (N, BLOCK_D) times log2(e)
    bias = tl.zeros(offs_d.shape, dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + dir64 * s_D_dir + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    Dv = tl.zeros(offs_d.shape, dtype=tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + dir64 * s_D_dir + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    A2 = _lanes_load(A_ptr + dir64 * s_A_dir + offs_d[None, :] * NSTATE + offs_n[:, None] * one,
                     mask_dn).to(tl.float32) * LOG2E
    return bias, Dv, A2


@triton.jit
def _chunk_start(seg, k, L, rev, SEG_LEN: tl.constexpr, BLOCK_T: tl.constexpr):
    # Lowest memory position of chunk k of segment seg (may be < 0 in a ragged reverse tail).
    p0 = seg * SEG_LEN + k * BLOCK_T  # first scan position of the chunk
    return p0 + rev * (L - 2 * p0 - BLOCK_T)  # reverse: the chunk covers t = L-p0-T .. L-p0-1


@triton.jit
def _chunk_positions(seg, k, L, rev, SEG_LEN: tl.constexpr, BLOCK_T: tl.constexpr):
    # Memory positions of chunk k of segment seg, ascending in memory, and their mask.
    m = _chunk_start(seg, k, L, rev, SEG_LEN, BLOCK_T) + tl.arange(0, BLOCK_T)
    return m, (m >= 0) & (m < L)


@triton.jit
def _chunk_inputs(u_ptr, delta_ptr, row_u, seg, k, L, mask_d, mask_n, bias, REV: tl.constexpr,
                  SEG_LEN: tl.constexpr, BLOCK_T: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    # Chunk k of segment seg: memory positions t, the (time, channel) and (time, state)
    # masks, and the (BLOCK_T, BLOCK_D) tiles u, raw delta (+ bias) and effective delta.
    t, mask_t = _chunk_positions(seg, k, L, REV, SEG_LEN, BLOCK_T)
    mask_dt = mask_t[:, None] & mask_d[None, :]
    mask_tn = mask_t[:, None] & mask_n[None, :]
    u = tl.load(u_ptr + row_u + t[:, None], mask=mask_dt, other=0.0).to(tl.float32)
    draw, dt = _load_delta(delta_ptr, row_u + t[:, None], mask_dt, bias, HAS_BIAS, SOFTPLUS)
    return t, mask_dt, mask_tn, u, draw, dt


@triton.jit
def _state_rows(ptr, row_B, t, s_B_t, mask_tn):
    # B or C at the chunk's positions as a (BLOCK_T, N, 1) fp32 tile
    return tl.load(ptr + row_B + t[:, None] * s_B_t, mask=mask_tn, other=0.0).to(tl.float32)[:, :, None]


@triton.jit
def _live_positions(seg, k, L, L_valid, rev, SEG_LEN: tl.constexpr, BLOCK_T: tl.constexpr):
    # Memory positions of chunk k of segment seg and whether each is a step of the scan
    # (0 <= t < L_valid, one unsigned compare: a ragged reverse tail's t < 0 wraps high)
    # (L_valid as a tensor: Triton passes an int argument equal to 1 as a Python int)
    t = _chunk_start(seg, k, L, rev, SEG_LEN, BLOCK_T) + tl.arange(0, BLOCK_T)
    return t, t.to(tl.uint32) < (tl.zeros_like(t) + L_valid).to(tl.uint32)


@triton.jit
def _raw_chunk(u_ptr, delta_ptr, z_ptr, B_ptr, C_ptr, row_u, row_z, row_B, s_B_t, seg, k, L, L_valid, mask_d,
               mask_n, REV: tl.constexpr, SEG_LEN: tl.constexpr, BLOCK_T: tl.constexpr, LOAD_Z: tl.constexpr,
               LOAD_C: tl.constexpr, LANE_ROWS: tl.constexpr, SOFTPLUS: tl.constexpr):
    # The raw tiles of chunk k: u, delta, z (BLOCK_T, BLOCK_D) and B, C (BLOCK_T, N), in
    # their memory dtype; z and C are u and B unless loaded. LANE_ROWS: through _lanes_load
    # (see _row_tile_load). Positions that are no steps of the scan (outside [0, L_valid),
    # which also covers a prefetch past the segment's last chunk) read 0, and delta -inf
    # under SOFTPLUS: softplus(-inf) is exactly 0, a step of decay 1 and input 0, so the
    # loop needs no select of its own.
    t, mask_t = _live_positions(seg, k, L, L_valid, REV, SEG_LEN, BLOCK_T)
    mask_dt = mask_t[:, None] & mask_d[None, :]
    mask_tn = mask_t[:, None] & mask_n[None, :]
    u = _row_tile_load(u_ptr + row_u + t[:, None], mask_dt, LANE_ROWS)
    d = _row_tile_load(delta_ptr + row_u + t[:, None], mask_dt, LANE_ROWS, float("-inf") if SOFTPLUS else 0.0)
    z = u
    if LOAD_Z:
        z = _row_tile_load(z_ptr + row_z + t[:, None], mask_dt, LANE_ROWS)
    Bt = _row_tile_load(B_ptr + row_B + t[:, None] * s_B_t, mask_tn, LANE_ROWS)
    Ct = Bt
    if LOAD_C:
        Ct = _row_tile_load(C_ptr + row_B + t[:, None] * s_B_t, mask_tn, LANE_ROWS)
    return u, d, z, Bt, Ct


@triton.jit
def _row_tile_load(ptrs, mask, LANE_ROWS: tl.constexpr, other: tl.constexpr = 0.0):
    """A (BLOCK_T, .) chunk tile of rows along time. Where the rows start at addresses Triton
    cannot prove 16-byte aligned (an odd row length: a 1,023-base window), it cannot load whole
    vectors, and its coalescing pass then lays the load out with time across lanes, converted
    to the scan's layout through shared memory, in many more registers (Triton 3.6, sm_90, the
    scoring forward at 1k: 248 registers, 8 programs per SM). LANE_ROWS loads the tile in the
    scan's layout directly (_lanes_load: the last axis on lanes, time in registers): the same
    number of scalar loads, each lane reading its own row."""
    if LANE_ROWS:
        return _lanes_load(ptrs, mask, other=other)
    return tl.load(ptrs, mask=mask, other=other)


@triton.jit
def _load_delta(delta_ptr, ptrs, mask, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    # raw delta (+ bias) and the effective delta, zero where masked
    draw = tl.load(delta_ptr + ptrs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        draw = draw + bias[None, :]
    dt = draw
    if SOFTPLUS:
        dt = _softplus(draw, SOFTPLUS == 2)
    return draw, tl.where(mask, dt, 0.0)


# Chunk tiles are (BLOCK_T, N, BLOCK_D): time first, so Triton's default layout puts lanes
# along channels (then states) and time inside the thread. Per-step values are picked out
# with _step and the recurrences run step by step in scan order; REV is a constexpr
# (callers branch on the runtime direction), so every step index is static.


@triton.jit
def _forward_steps(h, dt3, dtu3, B3, C3, A2, offs_t, REV: tl.constexpr, BLOCK_T: tl.constexpr,
                   WITH_Y: tl.constexpr):
    # h_p = exp(dt_p A) h_{p-1} + B_p dt_p u_p through the chunk from state h: the state
    # after it and (WITH_Y) y_p = C_p . h_p as a (BLOCK_T, 1, BLOCK_D) tile.
    y = tl.zeros_like(dt3)
    for jj in tl.static_range(BLOCK_T):
        j = jj + REV * (BLOCK_T - 1 - 2 * jj)
        h = tl.exp2(_step(dt3, offs_t, j) * A2) * h + _step(B3, offs_t, j) * _step(dtu3, offs_t, j)
        if WITH_Y:
            y = _put(y, offs_t, j, tl.sum(_step(C3, offs_t, j) * h, axis=0, keep_dims=True))
    return h, y


@triton.jit
def _chunk_states(h, dt3, A2, B3, dtu3, offs_t, REV: tl.constexpr, BLOCK_T: tl.constexpr):
    # the state after every step of the chunk from start state h, as a (BLOCK_T, N, BLOCK_D) tile
    H = tl.zeros_like(B3 * dtu3)
    for jj in tl.static_range(BLOCK_T):
        j = jj + REV * (BLOCK_T - 1 - 2 * jj)
        h = tl.exp2(_step(dt3, offs_t, j) * A2) * h + _step(B3, offs_t, j) * _step(dtu3, offs_t, j)
        H = _put(H, offs_t, j, h)
    return H


@triton.jit
def _adjoint_steps(carry, dA_acc, H, A2, B3, C3, dt3, dtu3, dy3, offs_t, REV: tl.constexpr,
                   BLOCK_T: tl.constexpr):
    # The adjoint dh_p = C_p dy_p + a_{p+1} dh_{p+1}, which runs against the scan direction,
    # through the chunk from the carry a_{p+1} dh_{p+1} entering at its end, and what it feeds, per step p:
    # g = dh_p a_p h_{p-1} = dh_p (H_p - B_p dt_p u_p); dA += g dt_p; (BLOCK_T, 1, BLOCK_D)
    # tiles of sum_n dh B and sum_n g A log2(e); and the (BLOCK_T, N, BLOCK_D) tile of
    # dh dt u, whose sum over channels is dB (summed after the chunk, see _add_lane_sums).
    dhB = tl.zeros_like(dt3)
    gA = tl.zeros_like(dt3)
    dhu = tl.zeros_like(H)
    for jj in tl.static_range(BLOCK_T):
        j = (BLOCK_T - 1 - jj) + REV * (2 * jj - BLOCK_T + 1)
        Bj = _step(B3, offs_t, j)
        dtuj = _step(dtu3, offs_t, j)
        dh = _step(C3, offs_t, j) * _step(dy3, offs_t, j) + carry
        g = dh * (_step(H, offs_t, j) - Bj * dtuj)
        dA_acc += g * _step(dt3, offs_t, j)
        dhB = _put(dhB, offs_t, j, tl.sum(dh * Bj, axis=0, keep_dims=True))
        gA = _put(gA, offs_t, j, tl.sum(g * A2, axis=0, keep_dims=True))
        dhu = _put(dhu, offs_t, j, dh * dtuj)
        carry = tl.exp2(_step(dt3, offs_t, j) * A2) * dh  # the decay a_p again: fewer live registers than keeping it
    return carry, dA_acc, dhB, gA, dhu


@triton.jit
def _shuffle_xor(x, mask: tl.constexpr):
    # Every fp32 element from lane `lane ^ mask` of the warp (shfl.bfly; GPU only), and
    # the lane each element sits in.
    return tl.inline_asm_elementwise("shfl.sync.bfly.b32 $0, $2, $3, 0x1f, -1; mov.u32 $1, %laneid;", "=r,=r,r,r",
                                     [x, tl.full(x.shape, mask, tl.int32)], (tl.float32, tl.int32), True, 1)


@triton.jit
def _partner_values(send, k: tl.constexpr, E2: tl.constexpr, D: tl.constexpr, lane_ok):
    # send[:, d ^ 2^k] for an (E2, D) tile: a warp shuffle where channel d is known to
    # sit in lane d (lane_ok), else a portable exchange (Triton's flip)
    recv = send
    if lane_ok:
        recv, _ = _shuffle_xor(send, 1 << k)
    else:
        recv = tl.reshape(tl.flip(tl.reshape(send, (E2, D >> (k + 1), 2, 1 << k)), 2), (E2, D))
    return recv


@triton.jit
def _first_exchange(send, chan, E2: tl.constexpr, D: tl.constexpr, LANE_SHUFFLE: tl.constexpr):
    # Round 0 of _add_lane_sums: the partner values, and whether channel d sits in lane d,
    # so that the later rounds may shuffle. Triton picks the layout, so the first shuffle
    # also reads every element's lane and one reduction checks it; where the check fails,
    # the portable exchange. Without LANE_SHUFFLE (the CPU interpreter), always portable.
    lane_ok = False
    recv = send
    if LANE_SHUFFLE:
        recv, lane_id = _shuffle_xor(send, 1)
        lane_ok = tl.min(tl.where((lane_id & (D - 1)) == chan, 1, 0)) == 1
        if not lane_ok:
            recv = _partner_values(send, 0, E2, D, False)
    else:
        recv = _partner_values(send, 0, E2, D, False)
    return recv, lane_ok


@triton.jit
def _add_lane_sums(ptr, x, t0, L, s_t, s_n, NSTATE: tl.constexpr, LANE_SHUFFLE: tl.constexpr):
    """Add sum_d x[t, n, d] into ptr[(t0 + t) * s_t + n * s_n] (fp32 atomics) for a
    (BLOCK_T, N_P2, BLOCK_D) tile x, skipping times outside [0, L) and padded states.

    The channels lie across lanes. A plain tl.sum over them costs log2(BLOCK_D) shuffle
    rounds for every element a thread holds. Here each round pairs the channels d and
    d ^ 2^k: the pair splits the top remaining (time, state) bit between them, each sends
    the half it gives up (one shuffle for two elements) and adds the half it receives.
    After log2(BLOCK_D) rounds, channel d holds the full sums for the (time, state)
    pairs whose top bits are d's low bits: 1/BLOCK_D of the shuffles, and the atomics
    come from every lane at once instead of from the lanes of one channel."""
    T: tl.constexpr = x.shape[0]
    NP2: tl.constexpr = x.shape[1]
    D: tl.constexpr = x.shape[2]
    E: tl.constexpr = T * NP2
    if E >= D:
        xs = tl.reshape(x, (E, D))
        chan = tl.arange(0, D)[None, :]  # (1, D): channel within the block
        e = tl.zeros((1, D), dtype=tl.int32)  # first (time, state) index of the kept part
        for k in tl.static_range(16):
            if (1 << k) < D:  # round k: E >> k pairs a thread holds, halved
                xs = tl.reshape(xs, (2, E >> (k + 1), D))
                bit = (chan >> k) & 1
                top = tl.arange(0, 2)[:, None, None]  # inside the thread: the picks are register reads
                lo = tl.sum(tl.where(top == 0, xs, _negative_zero()), axis=0)
                hi = tl.sum(tl.where(top == 1, xs, _negative_zero()), axis=0)
                keep = tl.where(bit == 1, hi, lo)
                send = tl.where(bit == 1, lo, hi)
                # the partner channel's `send` (it gave up the half this channel keeps)
                if k == 0:
                    recv, lane_ok = _first_exchange(send, chan, E >> 1, D, LANE_SHUFFLE)
                else:
                    recv = _partner_values(send, k, E >> (k + 1), D, lane_ok)
                xs = keep + recv
                e += bit * (E >> (k + 1))
        e = e + tl.arange(0, E // D)[:, None]  # (E / D, D)
        t = t0 + e // NP2
        n = e % NP2
        tl.atomic_add(ptr + t * s_t + n * s_n, xs, mask=(t >= 0) & (t < L) & (n < NSTATE), sem="relaxed")
    else:  # too few (time, state) pairs to split: a plain sum over the channels
        t = t0 + tl.arange(0, T)[:, None]
        n = tl.arange(0, NP2)[None, :]
        tl.atomic_add(ptr + t * s_t + n * s_n, tl.sum(x, axis=2), mask=(t >= 0) & (t < L) & (n < NSTATE),
                      sem="relaxed")


@triton.jit
def _lanes_load(ptrs, mask, L2_ONLY: tl.constexpr = False, other: tl.constexpr = 0.0):
    """Load a state-shaped (N, BLOCK_D) tile in the scan's register layout: channels along
    lanes, then the low bits of the state index, the rest of the states in registers (or any
    tile the same way: its last axis on lanes, then the axis before it; see _row_tile_load).

    The tile is read through a flat (1-D) access. Triton's coalescing pass orders the axes
    of a multi-dimensional access by their contiguity in memory, and where none shows (the
    offsets hide it, see `one`) by a tie-break: Triton 3.6 puts the state axis on lanes,
    which made every step of the scan convert its state tiles between layouts. A 1-D
    access without contiguity has one layout (element i in lane i % 32, then registers),
    and reshaping it back puts the last axis on lanes, then the axis before it."""
    n: tl.constexpr = ptrs.numel
    flat_ptrs = tl.reshape(ptrs, (n,))
    flat_mask = tl.reshape(tl.broadcast_to(mask, ptrs.shape), (n,))
    if L2_ONLY:  # cached in L2 only (.cg): values another SM wrote during this kernel
        v = tl.load(flat_ptrs, mask=flat_mask, other=other, cache_modifier=".cg")
    else:
        v = tl.load(flat_ptrs, mask=flat_mask, other=other)
    return tl.reshape(v, ptrs.shape)


@triton.jit
def _lanes_store(ptrs, v, mask, ADD: tl.constexpr = False):
    # Store a tile held in _lanes_load's layout, through the same flat access; ADD: add it
    # with fp32 atomics instead
    n: tl.constexpr = ptrs.numel
    flat_ptrs = tl.reshape(ptrs, (n,))
    flat_v = tl.reshape(tl.broadcast_to(v, ptrs.shape), (n,)).to(ptrs.dtype.element_ty)
    flat_mask = tl.reshape(tl.broadcast_to(mask, ptrs.shape), (n,))
    if ADD:
        tl.atomic_add(flat_ptrs, flat_v, mask=flat_mask, sem="relaxed")
    else:
        tl.store(flat_ptrs, flat_v, mask=flat_mask)


@triton.jit
def _row_tile_store(ptrs, v, mask, LANE_ROWS: tl.constexpr):
    # store a chunk tile of rows along time in their dtype (LANE_ROWS: see _row_tile_load)
    if LANE_ROWS:
        _lanes_store(ptrs, v, mask)
    else:
        tl.store(ptrs, v.to(ptrs.dtype.element_ty), mask=mask)


@triton.jit
def _sigmoid(x, FAST: tl.constexpr):
    # FAST (as for _softplus): 1 / (1 + 2^(-x log2 e)) with ex2 and rcp on the special-function
    # unit (4 instructions instead of an IEEE division's 16); exact limits 0 and 1
    if FAST:
        return _sfu(1.0 + tl.exp2(-x * LOG2E), "rcp")
    return tl.sigmoid(x)


@triton.jit
def _gate(dout_or_y, zv, FAST: tl.constexpr):
    return dout_or_y * zv * _sigmoid(zv, FAST)


@triton.jit(do_not_specialize=["one", "direction"])
def _scan_fwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,
    out_ptr, last_ptr, hs_ptr, sdt_ptr,
    batch, dim, L, L_valid, n_seg, n_rows, dim_per_group,
    s_u_dir, s_u_b, s_u_d,
    s_z_dir, s_z_b, s_z_d,
    s_A_dir, s_B_dir, s_B_b, s_B_g, s_B_n, s_B_t,
    s_D_dir,
    direction, one,
    NSTATE: tl.constexpr, NSTATE_P2: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr, SEG_LEN: tl.constexpr, REV: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr, SUMMARY: tl.constexpr, PREFETCH: tl.constexpr, ADD_OUT: tl.constexpr,
    LANE_ROWS: tl.constexpr = False,
):
    """SUMMARY: run each segment (but the last) from a zero state; write its end state
    to hs[seg + 1] and its summed delta to sdt[seg]. Otherwise: run each segment from
    hs[seg] (zero for the first), write out and the final state. ADD_OUT (1; 2 for an fp32
    out on the GPU): out holds direction 0's output (this is another direction's launch,
    after it): add this direction's into it, rounded to out's dtype first and (2) added
    on its own (_add_rounded), so the sum is what adding the two stored outputs gives.

    L is the rows' length in memory, L_valid <= L the scan's: positions from L_valid on
    are steps of (decay 1, input 0), so they change no state, and their out is not
    written (memory padded to a multiple of 16 lets every load and store be a vector
    access). PREFETCH: load each chunk one chunk ahead (more registers, the loads' latency
    hidden behind a chunk of work; pays where a program has no other warps to hide it).
    LANE_ROWS: the chunk tiles of u, delta, z, B, C and out go through _lanes_load /
    _lanes_store (for rows Triton cannot load as whole vectors: see _row_tile_load)."""
    b, d0, seg = _program_coords(tl.program_id(0), n_seg, dim, BLOCK_D)
    if SUMMARY and seg == n_seg - 1:
        return
    g = d0 // dim_per_group

    offs_n = tl.arange(0, NSTATE_P2)
    offs_t = tl.arange(0, BLOCK_T)
    mask_n = offs_n < NSTATE
    offs_d, mask_d, mask_dn, dir64, b64, d64 = _channel_block(d0, b, direction, dim, mask_n, BLOCK_D)

    bias, Dv, A2 = _channel_params(D_ptr, bias_ptr, A_ptr, dir64, s_D_dir, s_A_dir, offs_d, offs_n,
                                   mask_d, mask_dn, one, NSTATE, HAS_D, HAS_BIAS)

    row_u = dir64 * s_u_dir + b64 * s_u_b + d64[None, :] * s_u_d  # (1, BLOCK_D)
    row_z = dir64 * s_z_dir + b64 * s_z_b + d64[None, :] * s_z_d
    # B/C: a scalar base and int32 offsets (1, N), to spare registers
    B_ptr += dir64 * s_B_dir + b64 * s_B_b + g * s_B_g
    C_ptr += dir64 * s_B_dir + b64 * s_B_b + g * s_B_g
    row_B = offs_n[None, :] * s_B_n
    # State-shaped tiles (A, the state buffers, the last state) are indexed with `one`
    # (= 1, unspecialised), so Triton sees no contiguity, and go through _lanes_load /
    # _lanes_store: lanes along channels, the register layout of the scan.
    row_dn = (dir64 * batch + b64) * dim + d64  # (BLOCK_D,)
    hs_row = offs_n[:, None] * n_rows + row_dn[None, :] * one  # state buffers: (n_seg, N, rows)
    seg64 = seg.to(tl.int64)

    h = _lanes_load(hs_ptr + hs_row + seg64 * (NSTATE * n_rows),
                    mask_dn & (tl.full(mask_dn.shape, seg * (1 - SUMMARY), tl.int32) > 0))
    sdt = tl.zeros((BLOCK_D,), dtype=tl.float32)
    n_chunks = tl.cdiv(tl.minimum(SEG_LEN, L - seg * SEG_LEN), BLOCK_T)
    LOAD_Z: tl.constexpr = HAS_Z and not SUMMARY
    if PREFETCH:
        u_n, d_n, z_n, B_n, C_n = _raw_chunk(u_ptr, delta_ptr, z_ptr, B_ptr, C_ptr, row_u, row_z, row_B, s_B_t, seg,
                                             0, L, L_valid, mask_d, mask_n, REV, SEG_LEN, BLOCK_T, LOAD_Z,
                                             not SUMMARY, LANE_ROWS, SOFTPLUS)
    for k in range(0, n_chunks):
        if PREFETCH:
            u_raw, d_raw, z_raw, B_raw, C_raw = u_n, d_n, z_n, B_n, C_n
            u_n, d_n, z_n, B_n, C_n = _raw_chunk(u_ptr, delta_ptr, z_ptr, B_ptr, C_ptr, row_u, row_z, row_B, s_B_t,
                                                 seg, k + 1, L, L_valid, mask_d, mask_n, REV, SEG_LEN, BLOCK_T,
                                                 LOAD_Z, not SUMMARY, LANE_ROWS, SOFTPLUS)
        else:
            u_raw, d_raw, z_raw, B_raw, C_raw = _raw_chunk(u_ptr, delta_ptr, z_ptr, B_ptr, C_ptr, row_u, row_z,
                                                           row_B, s_B_t, seg, k, L, L_valid, mask_d, mask_n, REV,
                                                           SEG_LEN, BLOCK_T, LOAD_Z, not SUMMARY, LANE_ROWS, SOFTPLUS)
        t, mask_t = _live_positions(seg, k, L, L_valid, REV, SEG_LEN, BLOCK_T)
        mask_dt = mask_t[:, None] & mask_d[None, :]
        u = u_raw.to(tl.float32)
        draw = d_raw.to(tl.float32)
        if HAS_BIAS:
            draw = draw + bias[None, :]
        if SOFTPLUS:  # masked positions: softplus(-inf) = 0 (see _raw_chunk)
            dt = _softplus(draw, SOFTPLUS == 2)
        else:
            dt = tl.where(mask_dt, draw, 0.0)
        dtu = dt * u  # masked: u reads 0
        B3 = B_raw.to(tl.float32)[:, :, None]
        C3 = B3
        if not SUMMARY:
            C3 = C_raw.to(tl.float32)[:, :, None]
        h, y3 = _forward_steps(h, dt[:, None, :], dtu[:, None, :], B3, C3, A2, offs_t, REV,
                               BLOCK_T, not SUMMARY)
        if SUMMARY:
            sdt += tl.sum(dt, axis=0)
        else:
            y = tl.sum(y3, axis=1)
            if HAS_D:
                y = y + Dv[None, :] * u
            if HAS_Z:
                y = _gate(y, z_raw.to(tl.float32), SOFTPLUS == 2)
            if ADD_OUT:
                o_ptrs = out_ptr + row_u - dir64 * s_u_dir + t[:, None]
                y = y.to(out_ptr.dtype.element_ty).to(tl.float32)
                y = _add_rounded(y, _row_tile_load(o_ptrs, mask_dt, LANE_ROWS).to(tl.float32), ADD_OUT == 2)
                _row_tile_store(o_ptrs, y, mask_dt, LANE_ROWS)
            else:
                _row_tile_store(out_ptr + row_u + t[:, None], y, mask_dt, LANE_ROWS)

    if SUMMARY:
        _lanes_store(hs_ptr + hs_row + (seg64 + 1) * (NSTATE * n_rows), h, mask_dn)
        tl.store(sdt_ptr + seg64 * n_rows + row_dn, sdt, mask=mask_d)
    else:
        if seg == n_seg - 1:
            _lanes_store(last_ptr + row_dn[None, :] * NSTATE + offs_n[:, None] * one, h, mask_dn)


@triton.jit
def _chain_combine(a1, b1, a2, b2):
    # (decay, input) pairs of v -> a v + b, the earlier one first
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _segment_chain_kernel(
    buf_ptr, sdt_ptr, A_ptr,
    n_rows, batch, dim, n_seg, s_A_dir,
    NSTATE: tl.constexpr, BLOCK: tl.constexpr, SEG_BLOCK: tl.constexpr,
):
    """Chain segment summaries into true start states for BLOCK rows (direction, b, d)
    and one state n (program axis 0).

    buf: (n_seg, N, n_rows), sdt: (n_seg, n_rows). buf[0] = 0 and buf[s] holds segment
    s-1's end state from a zero start; it becomes segment s's start state,
    v(s) = exp(A sdt(s-1)) v(s-1) + buf[s].

    SEG_BLOCK segments are read at once as (SEG_BLOCK, BLOCK) tiles, rows contiguous, so
    the loads do not wait on the chain; a scan of (decay, input) pairs over the tile and
    the value carried in from the tile before give the tile's values. Past the last
    segment the pairs are (1, 0)."""
    n = tl.program_id(0)
    row = (tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    mask = row < n_rows
    direction = row // (batch * dim)
    A2 = tl.load(A_ptr + direction * s_A_dir + (row % dim) * NSTATE + n, mask=mask, other=0.0).to(tl.float32) * LOG2E
    base = n * n_rows + row
    offs_q = tl.arange(0, SEG_BLOCK)
    v = tl.zeros((BLOCK,), dtype=tl.float32)
    for kk in range(0, tl.cdiv(n_seg, SEG_BLOCK)):
        s = (kk * SEG_BLOCK + offs_q).to(tl.int64)  # segment
        valid = (s < n_seg)[:, None] & mask[None, :]
        later = valid & (s > 0)[:, None]
        ptrs = buf_ptr + s[:, None] * (NSTATE * n_rows) + base[None, :]
        inp = tl.load(ptrs, mask=later, other=0.0)
        sdt = tl.load(sdt_ptr + (s - 1)[:, None] * n_rows + row[None, :], mask=later, other=0.0)
        decay = tl.where(later, tl.exp2(A2[None, :] * sdt), tl.where(valid, 0.0, 1.0))
        a, b = tl.associative_scan((decay, inp), 0, _chain_combine)
        out = a * v[None, :] + b
        tl.store(ptrs, out, mask=valid)
        v = tl.sum(tl.where((offs_q == SEG_BLOCK - 1)[:, None], out, 0.0), axis=0)


@triton.jit
def _sweep_steps(h, P, c, dt3, dtu3, B3, C3, dy3, A2, offs_t, REV: tl.constexpr, BLOCK_T: tl.constexpr,
                 WITH_Y: tl.constexpr):
    # The backward's forward sweep through one chunk, in scan order: the state h (as in
    # _forward_steps), the running decay P = prod a_q since the segment's start and the
    # carry-from-zero c = sum_p P_p C_p dy_p, which is what the segment passes on to the one
    # before it when no carry enters at its end (see _adjoint_steps: dh_p = C_p dy_p + a_{p+1} dh_{p+1});
    # and (WITH_Y) y_p = C_p . h_p as a (BLOCK_T, 1, BLOCK_D) tile, for dz.
    y = tl.zeros_like(dt3)
    for jj in tl.static_range(BLOCK_T):
        j = jj + REV * (BLOCK_T - 1 - 2 * jj)
        a = tl.exp2(_step(dt3, offs_t, j) * A2)
        h = a * h + _step(B3, offs_t, j) * _step(dtu3, offs_t, j)
        P = P * a
        c = c + P * (_step(C3, offs_t, j) * _step(dy3, offs_t, j))
        if WITH_Y:
            y = _put(y, offs_t, j, tl.sum(_step(C3, offs_t, j) * h, axis=0, keep_dims=True))
    return h, P, c, y


@triton.jit
def _wait_flag(ptr):
    # spin until the flag at ptr is set (one thread's acquire; Triton shares a scalar atomic's
    # result with the program's other threads through shared memory and a barrier)
    flag = tl.atomic_add(ptr, 0, sem="acquire")
    while flag == 0:
        flag = tl.atomic_add(ptr, 0, sem="acquire")


@triton.jit(do_not_specialize=["one", "direction"])
def _scan_bwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, hs_ptr, carry_ptr, scratch_ptr,
    dout_ptr, dlast_ptr, flags_ptr, counter_ptr,
    du_ptr, ddelta_ptr, dz_ptr, dB_ptr, dC_ptr, dA_ptr, dD_ptr, dbias_ptr,
    batch, dim, L, n_seg, n_rows, dim_per_group,
    s_u_dir, s_u_b, s_u_d,
    s_z_dir, s_z_b, s_z_d,
    s_A_dir, s_B_dir, s_B_b, s_B_g, s_B_n, s_B_t,
    s_D_dir,
    direction, one, n_work, s_dz_dir, s_dout_dir, s_dB_n, s_dB_t,
    NSTATE: tl.constexpr, NSTATE_P2: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr, SEG_LEN: tl.constexpr, REV: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_DLAST: tl.constexpr,
    SOFTPLUS: tl.constexpr, LANE_SHUFFLE: tl.constexpr,
):
    """The backward in one launch per direction. A work item is (segment, BLOCK_D channels of
    one sequence); programs claim items in order from counter[direction], last segment first.
    For an item: a forward sweep from the segment's start state hs[seg] keeps the chunk-start
    states (in this program's scratch), the carry the segment passes on from a zero carry
    and its total decay, and writes dz (it needs only the forward's states); it waits for the
    carry entering the segment's end, carry[seg] (set by the item of segment seg + 1, flagged
    in flags[direction, seg, channel block]; dlast or zero for the last segment), passes the
    true carry on to carry[seg - 1], then walks the chunks backwards: du, ddelta written;
    dB/dC (reduced over the program's channels first) and the segment's dA/dD/dbias added
    with fp32 atomics.

    An item waits only on an item claimed before it, which a running program holds, so the
    wait ends whatever the number of programs resident on the GPU. The scratch of
    chunk-start states is sized by the grid, not by L."""
    offs_n = tl.arange(0, NSTATE_P2)
    offs_t = tl.arange(0, BLOCK_T)
    mask_n = offs_n < NSTATE
    n_groups = dim // dim_per_group
    n_dblocks = tl.cdiv(dim, BLOCK_D)
    n_rb = batch * n_dblocks
    SLOT: tl.constexpr = NSTATE_P2 * BLOCK_D
    scratch_ptr += tl.program_id(0).to(tl.int64) * (SEG_LEN // BLOCK_T) * SLOT
    scratch_row = offs_n[:, None] * BLOCK_D + tl.arange(0, BLOCK_D)[None, :] * one  # `one`: see _scan_fwd_kernel
    flags_ptr += direction.to(tl.int64) * n_seg * n_rb
    work = tl.atomic_add(counter_ptr + direction, 1, sem="relaxed")
    while work < n_work:
        seg = n_seg - 1 - work // n_rb
        rb = work % n_rb
        b = rb // n_dblocks
        d0 = (rb % n_dblocks) * BLOCK_D
        g = d0 // dim_per_group
        offs_d, mask_d, mask_dn, dir64, b64, d64 = _channel_block(d0, b, direction, dim, mask_n, BLOCK_D)

        bias, Dv, A2 = _channel_params(D_ptr, bias_ptr, A_ptr, dir64, s_D_dir, s_A_dir, offs_d, offs_n,
                                       mask_d, mask_dn, one, NSTATE, HAS_D, HAS_BIAS)

        row_u = dir64 * s_u_dir + b64 * s_u_b + d64[None, :] * s_u_d
        row_z = dir64 * s_z_dir + b64 * s_z_b + d64[None, :] * s_z_d
        # B/C and dB/dC: scalar bases and int32 offsets
        # dout may be shared by the directions (s_dout_dir 0): a scalar base, u's row offsets
        dout_base = dout_ptr + dir64 * (s_dout_dir - s_u_dir)
        bc_base = dir64 * s_B_dir + b64 * s_B_b + g * s_B_g
        Bp = B_ptr + bc_base
        Cp = C_ptr + bc_base
        dbc_base = ((dir64 * batch + b64) * n_groups + g) * L * NSTATE
        dBp = dB_ptr + dbc_base
        dCp = dC_ptr + dbc_base
        row_B = offs_n[None, :] * s_B_n
        row_dn = (dir64 * batch + b64) * dim + d64
        # state buffers: (n_seg, N, rows)
        seg_row = seg.to(tl.int64) * (NSTATE * n_rows) + offs_n[:, None] * n_rows + row_dn[None, :] * one
        n_chunks = tl.cdiv(tl.minimum(SEG_LEN, L - seg * SEG_LEN), BLOCK_T)

        # forward sweep: chunk-start states into this program's scratch, and the carry from zero
        h = _lanes_load(hs_ptr + seg_row, mask_dn & (tl.full(mask_dn.shape, seg, tl.int32) > 0))
        P = tl.full((NSTATE_P2, BLOCK_D), 1.0, dtype=tl.float32)
        c = tl.zeros((NSTATE_P2, BLOCK_D), dtype=tl.float32)
        for k in range(0, n_chunks):
            _lanes_store(scratch_ptr + scratch_row + k * SLOT, h, scratch_row >= 0)
            t, mask_dt, mask_tn, u, _, dt = _chunk_inputs(u_ptr, delta_ptr, row_u, seg, k, L, mask_d,
                                                          mask_n, bias, REV, SEG_LEN, BLOCK_T, HAS_BIAS, SOFTPLUS)
            B3 = _state_rows(Bp, row_B, t, s_B_t, mask_tn)
            C3 = _state_rows(Cp, row_B, t, s_B_t, mask_tn)
            dy, dout, zv = _dy(dout_base, z_ptr, row_u, row_z, t, mask_dt, HAS_Z, SOFTPLUS)
            h, P, c, y = _sweep_steps(h, P, c, dt[:, None, :], (dt * u)[:, None, :], B3, C3, dy[:, None, :], A2,
                                      offs_t, REV, BLOCK_T, HAS_Z)
            if HAS_Z:  # dz here, where the states run forwards anyway: the walk keeps fewer values live
                sig = _sigmoid(zv, SOFTPLUS == 2)
                y = tl.sum(y, axis=1) + Dv[None, :] * u
                dz = dout * y * sig * (1.0 + zv * (1.0 - sig))
                tl.store(dz_ptr + row_z - dir64 * s_z_dir + dir64 * s_dz_dir + t[:, None],
                         dz.to(dz_ptr.dtype.element_ty), mask=mask_dt)
        # the carry entering the segment's end, and the true carry it passes on
        flag_ptr = flags_ptr + seg * n_rb + rb
        if seg < n_seg - 1:
            _wait_flag(flag_ptr)
            carry = _lanes_load(carry_ptr + seg_row, mask_dn, True)  # written by another SM
        elif HAS_DLAST:
            carry = _lanes_load(dlast_ptr + row_dn[None, :] * NSTATE + offs_n[:, None] * one, mask_dn)
        else:
            carry = tl.zeros((NSTATE_P2, BLOCK_D), dtype=tl.float32)
        if seg > 0:
            _lanes_store(carry_ptr + seg_row - NSTATE * n_rows, c + P * carry, mask_dn)
            tl.debug_barrier()  # every thread's carry stored before the flag is released
            tl.atomic_xchg(flag_ptr - n_rb, 1, sem="release")

        dA_acc = tl.zeros((NSTATE_P2, BLOCK_D), dtype=tl.float32)
        dD_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
        dbias_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
        for kk in range(0, n_chunks):
            k = n_chunks - 1 - kk
            t, mask_dt, mask_tn, u, draw, dt = _chunk_inputs(u_ptr, delta_ptr, row_u, seg, k, L, mask_d, mask_n,
                                                             bias, REV, SEG_LEN, BLOCK_T, HAS_BIAS, SOFTPLUS)
            C3 = _state_rows(Cp, row_B, t, s_B_t, mask_tn)
            dy, _, _ = _dy(dout_base, z_ptr, row_u, row_z, t, mask_dt, HAS_Z, SOFTPLUS)
            B3 = _state_rows(Bp, row_B, t, s_B_t, mask_tn)
            h0 = _lanes_load(scratch_ptr + scratch_row + k * SLOT, scratch_row >= 0)
            dtu3 = (dt * u)[:, None, :]
            H = _chunk_states(h0, dt[:, None, :], A2, B3, dtu3, offs_t, REV, BLOCK_T)
            carry, dA_acc, dhB, gA, dhu = _adjoint_steps(carry, dA_acc, H, A2, B3, C3, dt[:, None, :],
                                                         dtu3, dy[:, None, :], offs_t, REV, BLOCK_T)
            t0 = _chunk_start(seg, k, L, REV, SEG_LEN, BLOCK_T)
            _add_lane_sums(dBp, dhu, t0, L, s_dB_t, s_dB_n, NSTATE, LANE_SHUFFLE)
            _add_lane_sums(dCp, H * dy[:, None, :], t0, L, s_dB_t, s_dB_n, NSTATE, LANE_SHUFFLE)
            dhB = tl.sum(dhB, axis=1)
            ddt = tl.sum(gA, axis=1) * LN2 + dhB * u
            du = dhB * dt + Dv[None, :] * dy
            if HAS_D:
                dD_acc += tl.sum(dy * u, axis=0)
            if SOFTPLUS:
                ddt = tl.where(draw <= 20.0, ddt * _sigmoid(draw, SOFTPLUS == 2), ddt)
            ddt = tl.where(mask_dt, ddt, 0.0)
            if HAS_BIAS:
                dbias_acc += tl.sum(ddt, axis=0)
            tl.store(du_ptr + row_u + t[:, None], du.to(du_ptr.dtype.element_ty), mask=mask_dt)
            tl.store(ddelta_ptr + row_u + t[:, None], ddt.to(ddelta_ptr.dtype.element_ty), mask=mask_dt)

        # the segment's share of dA, dD, dbias (R, dim[, N]): fp32 atomics, like dB/dC
        # (per-segment partials would cost n_seg x dim x N x 4 bytes per row)
        drow = dir64 * dim + d64
        _lanes_store(dA_ptr + drow[None, :] * NSTATE + offs_n[:, None] * one, dA_acc, mask_dn, True)
        if HAS_D:
            tl.atomic_add(dD_ptr + drow, dD_acc, mask=mask_d, sem="relaxed")
        if HAS_BIAS:
            tl.atomic_add(dbias_ptr + drow, dbias_acc, mask=mask_d, sem="relaxed")
        work = tl.atomic_add(counter_ptr + direction, 1, sem="relaxed")


@triton.jit
def _dy(dout_base, z_ptr, row_u, row_z, t, mask_dt, HAS_Z: tl.constexpr, SOFTPLUS: tl.constexpr):
    # the scan output's gradient dy: dout, through the gate where there is one; and dout and
    # z (dout again without a gate) for dz
    dout = tl.load(dout_base + row_u + t[:, None], mask=mask_dt, other=0.0).to(tl.float32)
    if HAS_Z:
        zv = tl.load(z_ptr + row_z + t[:, None], mask=mask_dt, other=0.0).to(tl.float32)
        return _gate(dout, zv, SOFTPLUS == 2), dout, zv
    return dout, dout, dout
