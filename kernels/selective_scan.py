"""Triton selective-scan kernels (Mamba-1), forward and backward.

One program owns (batch b, a block of BLOCK_D channels, one scan direction) and
walks the sequence in chunks of BLOCK_T steps along its direction, carrying the
fp32 state h (BLOCK_D, N) in registers. Inside a chunk the recurrence is an
associative scan over (decay, input) pairs on a (BLOCK_D, N, BLOCK_T) tile, so
each B/C row load serves all BLOCK_D channels.

Directions: position p along the scan maps to time t = p (forward) or
t = L-1-p (reverse), so a reverse scan reads memory backwards and nothing is
flipped. A direction-stacked launch (grid axis 1) runs BiMamba's forward scan of
one parameter set and the reverse scan of another in one kernel.

Ragged tails are padded with (decay 1, input 0) after bias and softplus, so the
state in the last tile column is the state after the last real step.

The forward saves the state at every chunk start (fp32) when a backward will
follow. The backward walks chunks in the opposite order: it recomputes the
chunk's states from the saved start state, runs the adjoint recurrence
dh_p = C_p dy_p + a_{p+1} dh_{p+1} as a reverse scan, and reduces dB/dC over its
channels in registers before one atomic add per (b, n, t) and program.
"""

import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def _pair_combine(a0, x0, a1, x1):
    # (a0, x0) then (a1, x1): h -> a1 (a0 h + x0) + x1
    return a1 * a0, a1 * x0 + x1


@triton.jit
def _adjoint_combine(xl, pl, fl, xe, pe, fe):
    # Segment summaries for dh_p = x_p + a_{p+1} dh_{p+1}, scanned from the end
    # (reverse=True, whose combine receives the later segment first, as flip-scan-flip).
    # A segment [s..e] is (X, P, F): dh_s = X + P * (a_{e+1} dh_{e+1}), F = a_s (its first decay).
    return xe + pe * fl * xl, pe * fl * pl, fe


@triton.jit
def _softplus(x):
    return tl.where(x <= 20.0, tl.log(1.0 + tl.exp(x)), x)


@triton.jit
def _scan_fwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,
    out_ptr, last_ptr, hs_ptr,
    batch, dim, L, n_chunks, dim_per_group,
    s_u_dir, s_u_b, s_u_d,
    s_z_dir, s_z_b, s_z_d,
    s_A_dir, s_B_dir, s_B_b, s_B_g, s_B_n,
    s_D_dir,
    rev_base,
    NSTATE: tl.constexpr, NSTATE_P2: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr, SAVE_STATES: tl.constexpr, STAGES: tl.constexpr,
):
    pid = tl.program_id(0)
    direction = tl.program_id(1)
    n_dblocks = tl.cdiv(dim, BLOCK_D)
    b = pid // n_dblocks
    d0 = (pid % n_dblocks) * BLOCK_D
    rev = rev_base + direction - 2 * rev_base * direction  # xor on {0, 1}
    g = d0 // dim_per_group

    offs_d = d0 + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, NSTATE_P2)
    offs_t = tl.arange(0, BLOCK_T)
    mask_d = offs_d < dim
    mask_n = offs_n < NSTATE
    mask_dn = mask_d[:, None] & mask_n[None, :]

    dir64 = direction.to(tl.int64)
    b64 = b.to(tl.int64)
    A = tl.load(A_ptr + dir64 * s_A_dir + offs_d[:, None] * NSTATE + offs_n[None, :],
                mask=mask_dn, other=0.0).to(tl.float32) * LOG2E
    if HAS_D:
        Dv = tl.load(D_ptr + dir64 * s_D_dir + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + dir64 * s_D_dir + offs_d, mask=mask_d, other=0.0).to(tl.float32)

    row_u = dir64 * s_u_dir + b64 * s_u_b + offs_d.to(tl.int64)[:, None] * s_u_d  # (BLOCK_D, 1)
    row_z = dir64 * s_z_dir + b64 * s_z_b + offs_d.to(tl.int64)[:, None] * s_z_d
    row_B = dir64 * s_B_dir + b64 * s_B_b + g * s_B_g + offs_n.to(tl.int64)[:, None] * s_B_n  # (N, 1)
    state_row = ((dir64 * batch + b64) * dim + offs_d.to(tl.int64)[:, None]) * NSTATE + offs_n[None, :]

    h = tl.zeros((BLOCK_D, NSTATE_P2), dtype=tl.float32)
    for c in tl.range(0, n_chunks, num_stages=STAGES):
        if SAVE_STATES:
            tl.store(hs_ptr + ((dir64 * batch + b64) * dim + offs_d.to(tl.int64)[:, None]) * (n_chunks * NSTATE)
                     + c * NSTATE + offs_n[None, :], h, mask=mask_dn)
        pos = c * BLOCK_T + offs_t
        mask_t = pos < L
        t = (pos + rev * (L - 1 - 2 * pos)).to(tl.int64)
        mask_dt = mask_d[:, None] & mask_t[None, :]
        mask_nt = mask_n[:, None] & mask_t[None, :]
        u = tl.load(u_ptr + row_u + t[None, :], mask=mask_dt, other=0.0).to(tl.float32)
        dt = tl.load(delta_ptr + row_u + t[None, :], mask=mask_dt, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dt = dt + bias[:, None]
        if SOFTPLUS:
            dt = _softplus(dt)
        dt = tl.where(mask_dt, dt, 0.0)
        Bv = tl.load(B_ptr + row_B + t[None, :], mask=mask_nt, other=0.0).to(tl.float32)
        Cv = tl.load(C_ptr + row_B + t[None, :], mask=mask_nt, other=0.0).to(tl.float32)

        a = tl.exp2(dt[:, None, :] * A[:, :, None])
        x = (dt * u)[:, None, :] * Bv[None, :, :]
        Ps, Xs = tl.associative_scan((a, x), axis=2, combine_fn=_pair_combine)
        H = Xs + Ps * h[:, :, None]
        y = tl.sum(H * Cv[None, :, :], axis=1)
        h = tl.sum(tl.where(offs_t[None, None, :] == BLOCK_T - 1, H, 0.0), axis=2)
        if HAS_D:
            y = y + Dv[:, None] * u
        if HAS_Z:
            zv = tl.load(z_ptr + row_z + t[None, :], mask=mask_dt, other=0.0).to(tl.float32)
            y = y * zv * tl.sigmoid(zv)
        tl.store(out_ptr + row_u + t[None, :], y.to(out_ptr.dtype.element_ty), mask=mask_dt)
    tl.store(last_ptr + state_row, h, mask=mask_dn)


@triton.jit
def _scan_bwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, hs_ptr,
    dout_ptr, dlast_ptr,
    du_ptr, ddelta_ptr, dz_ptr, dB_ptr, dC_ptr, dA_ptr, dD_ptr, dbias_ptr,
    batch, dim, L, n_chunks, dim_per_group,
    s_u_dir, s_u_b, s_u_d,
    s_z_dir, s_z_b, s_z_d, s_dz_dir,
    s_A_dir, s_B_dir, s_B_b, s_B_g, s_B_n,
    s_D_dir,
    rev_base,
    NSTATE: tl.constexpr, NSTATE_P2: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr, STAGES: tl.constexpr,
):
    pid = tl.program_id(0)
    direction = tl.program_id(1)
    n_dblocks = tl.cdiv(dim, BLOCK_D)
    b = pid // n_dblocks
    d0 = (pid % n_dblocks) * BLOCK_D
    rev = rev_base + direction - 2 * rev_base * direction
    g = d0 // dim_per_group

    offs_d = d0 + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, NSTATE_P2)
    offs_t = tl.arange(0, BLOCK_T)
    mask_d = offs_d < dim
    mask_n = offs_n < NSTATE
    mask_dn = mask_d[:, None] & mask_n[None, :]

    dir64 = direction.to(tl.int64)
    b64 = b.to(tl.int64)
    A = tl.load(A_ptr + dir64 * s_A_dir + offs_d[:, None] * NSTATE + offs_n[None, :],
                mask=mask_dn, other=0.0).to(tl.float32)
    A2 = A * LOG2E
    if HAS_D:
        Dv = tl.load(D_ptr + dir64 * s_D_dir + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + dir64 * s_D_dir + offs_d, mask=mask_d, other=0.0).to(tl.float32)

    row_u = dir64 * s_u_dir + b64 * s_u_b + offs_d.to(tl.int64)[:, None] * s_u_d
    row_z = dir64 * s_z_dir + b64 * s_z_b + offs_d.to(tl.int64)[:, None] * s_z_d
    row_B = dir64 * s_B_dir + b64 * s_B_b + g * s_B_g + offs_n.to(tl.int64)[:, None] * s_B_n
    # dB/dC are fp32 buffers shaped like (dirs, batch, groups, N, L), contiguous.
    n_groups = dim // dim_per_group
    row_dB = (((dir64 * batch + b64) * n_groups + g) * NSTATE + offs_n.to(tl.int64)[:, None]) * L
    state_row = ((dir64 * batch + b64) * dim + offs_d.to(tl.int64)[:, None]) * NSTATE + offs_n[None, :]
    hs_row = ((dir64 * batch + b64) * dim + offs_d.to(tl.int64)[:, None]) * (n_chunks * NSTATE) + offs_n[None, :]

    if HAS_DLAST:
        carry = tl.load(dlast_ptr + state_row, mask=mask_dn, other=0.0)
    else:
        carry = tl.zeros((BLOCK_D, NSTATE_P2), dtype=tl.float32)
    dA_acc = tl.zeros((BLOCK_D, NSTATE_P2), dtype=tl.float32)
    dD_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dbias_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)

    for cc in tl.range(0, n_chunks, num_stages=STAGES):
        c = n_chunks - 1 - cc
        h0 = tl.load(hs_ptr + hs_row + c * NSTATE, mask=mask_dn, other=0.0)
        pos = c * BLOCK_T + offs_t
        mask_t = pos < L
        t = (pos + rev * (L - 1 - 2 * pos)).to(tl.int64)
        mask_dt = mask_d[:, None] & mask_t[None, :]
        mask_nt = mask_n[:, None] & mask_t[None, :]
        u = tl.load(u_ptr + row_u + t[None, :], mask=mask_dt, other=0.0).to(tl.float32)
        draw = tl.load(delta_ptr + row_u + t[None, :], mask=mask_dt, other=0.0).to(tl.float32)
        if HAS_BIAS:
            draw = draw + bias[:, None]
        if SOFTPLUS:
            dt = _softplus(draw)
        else:
            dt = draw
        dt = tl.where(mask_dt, dt, 0.0)
        Bv = tl.load(B_ptr + row_B + t[None, :], mask=mask_nt, other=0.0).to(tl.float32)
        Cv = tl.load(C_ptr + row_B + t[None, :], mask=mask_nt, other=0.0).to(tl.float32)
        dout = tl.load(dout_ptr + row_u + t[None, :], mask=mask_dt, other=0.0).to(tl.float32)

        a = tl.exp2(dt[:, None, :] * A2[:, :, None])
        x = (dt * u)[:, None, :] * Bv[None, :, :]
        Ps, Xs = tl.associative_scan((a, x), axis=2, combine_fn=_pair_combine)
        H = Xs + Ps * h0[:, :, None]

        if HAS_Z:
            zv = tl.load(z_ptr + row_z + t[None, :], mask=mask_dt, other=0.0).to(tl.float32)
            sig = tl.sigmoid(zv)
            y = tl.sum(H * Cv[None, :, :], axis=1)
            if HAS_D:
                y = y + Dv[:, None] * u
            dz = dout * y * sig * (1.0 + zv * (1.0 - sig))
            tl.store(dz_ptr + row_z - dir64 * s_z_dir + dir64 * s_dz_dir + t[None, :],
                     dz.to(dz_ptr.dtype.element_ty), mask=mask_dt)
            dy = dout * zv * sig
        else:
            dy = dout

        # Adjoint: dh_p = C_p dy_p + a_{p+1} dh_{p+1}, a reverse scan within the chunk.
        xa = Cv[None, :, :] * dy[:, None, :]
        ones = tl.full(xa.shape, 1.0, tl.float32)
        Xa, Pa, _ = tl.associative_scan((xa, ones, a), axis=2, combine_fn=_adjoint_combine, reverse=True)
        dh = Xa + Pa * carry[:, :, None]
        # carry for the previous chunk: a at the chunk's first position times dh there
        carry = tl.sum(tl.where(offs_t[None, None, :] == 0, a * dh, 0.0), axis=2)

        # da_p * a_p = dh_p * h_{p-1} * a_p = dh_p * (H_p - x_p)
        dha = dh * (H - x)
        ddt = tl.sum(dha * A[:, :, None], axis=1)
        dA_acc += tl.sum(dha * dt[:, None, :], axis=2)
        dhB = tl.sum(dh * Bv[None, :, :], axis=1)  # (BLOCK_D, BLOCK_T)
        ddt += dhB * u
        du = dhB * dt
        if HAS_D:
            du += Dv[:, None] * dy
            dD_acc += tl.sum(dy * u, axis=1)
        dBv = tl.sum(dh * (dt * u)[:, None, :], axis=0)  # (N, BLOCK_T)
        dCv = tl.sum(H * dy[:, None, :], axis=0)
        if SOFTPLUS:
            ddt = ddt * tl.sigmoid(draw) * (draw <= 20.0) + ddt * (draw > 20.0)
        ddt = tl.where(mask_dt, ddt, 0.0)
        if HAS_BIAS:
            dbias_acc += tl.sum(ddt, axis=1)
        tl.store(du_ptr + row_u + t[None, :], du.to(du_ptr.dtype.element_ty), mask=mask_dt)
        tl.store(ddelta_ptr + row_u + t[None, :], ddt.to(ddelta_ptr.dtype.element_ty), mask=mask_dt)
        tl.atomic_add(dB_ptr + row_dB + t[None, :], dBv, mask=mask_nt, sem="relaxed")
        tl.atomic_add(dC_ptr + row_dB + t[None, :], dCv, mask=mask_nt, sem="relaxed")

    # per-batch partials, summed by the caller (deterministic)
    part = (dir64 * batch + b64) * dim + offs_d
    tl.store(dA_ptr + part[:, None] * NSTATE + offs_n[None, :], dA_acc, mask=mask_dn)
    if HAS_D:
        tl.store(dD_ptr + part, dD_acc, mask=mask_d)
    if HAS_BIAS:
        tl.store(dbias_ptr + part, dbias_acc, mask=mask_d)
