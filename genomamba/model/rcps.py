"""Reverse-complement helpers for RC parameter sharing (Caduceus-PS) and RC averaging.

Caduceus-PS keeps 2 * d_model channels: the embedding emits [emb(x), flip(emb(rc(x)))]
(flip = reverse both length and channels), and every block applies the same norm and
BiMamba to the first half and to the flipped second half, then flips back. Because
each block treats the halves independently with shared weights, the flip after one
block cancels the flip before the next, and the whole backbone is exactly

    hidden(x) = [h(x), flip(h(rc(x)))],    h = the shared single-strand backbone.

We therefore run the backbone once on the batch [x; rc(x)] (2 * batch rows, d_model
channels, no flips inside the model) and convert only at the edges:

- ``to_channel_layout`` gives the Caduceus (batch, L, 2 * d_model) features;
- the RC-equivariant LM head, W a_t + W[comp] flip_C(b)_t in the channel layout, is
  lin(h(x))_t + lin(h(rc x))_{L-1-t}[comp], i.e. ``combine_strand_logits``.

``tests/test_model_rc.py`` checks this against a literal per-block Caduceus wrapper.

Caduceus's *fused* add+norm branch (``fused_add_norm: true``, its released checkpoints)
hands the halves to the norm the other way round: the first sub-call gets the second
half unflipped, the second the first half flipped, and the residual keeps them in that
order. Per strand that is ``swap_strands`` (T: [p; q] -> [flip(q); flip(p)]) before every
block: hidden = norm_f(S_n T ... S_2 T S_1 T [e(x); e(rc x)]), S_i the plain block i
(``GenoMambaConfig.rcps_strand_swap``; ``tests/test_convert.py`` checks it against a
literal re-statement of that branch). T commutes with the strand exchange of rc(x), so
the model stays exactly RC-equivariant.
"""

from __future__ import annotations

import torch

from genomamba.data.vocab import COMPLEMENT


def complement_index(device=None) -> torch.Tensor:
    """Token id -> complement token id (A<->T, C<->G, others fixed), as a long tensor."""
    return torch.as_tensor(COMPLEMENT, dtype=torch.long, device=device)


def reverse_complement_ids(input_ids: torch.Tensor, complement: torch.Tensor) -> torch.Tensor:
    """(batch, L) token ids -> their reverse complements."""
    return complement[input_ids.flip(-1)]


def both_strands(input_ids: torch.Tensor, complement: torch.Tensor) -> torch.Tensor:
    """(batch, L) -> (2 * batch, L): the sequences, then their reverse complements."""
    return torch.cat([input_ids, reverse_complement_ids(input_ids, complement)], dim=0)


def rc_features(hidden: torch.Tensor) -> torch.Tensor:
    """RC action on channel-layout features (batch, L, C): reverse length and channels."""
    return hidden.flip(-2, -1)


def to_channel_layout(strands: torch.Tensor) -> torch.Tensor:
    """(2 * batch, L, d) strand-stacked features -> Caduceus layout (batch, L, 2 * d)."""
    fwd, rev = strands.chunk(2, dim=0)
    return torch.cat([fwd, rc_features(rev)], dim=-1)


def from_channel_layout(hidden: torch.Tensor) -> torch.Tensor:
    """Inverse of ``to_channel_layout``."""
    fwd, rev = hidden.chunk(2, dim=-1)
    return torch.cat([fwd, rc_features(rev)], dim=0)


def swap_strands(strands: torch.Tensor) -> torch.Tensor:
    """(2 * batch, L, d) [p; q] -> [flip(q); flip(p)], flip = reverse length and channels."""
    fwd, rev = strands.chunk(2, dim=0)
    return torch.cat([rev, fwd], dim=0).flip(-2, -1)


def rc_logits(logits: torch.Tensor, complement: torch.Tensor) -> torch.Tensor:
    """RC action on per-position logits (batch, L, V): reverse positions, complement the vocabulary."""
    return logits.flip(-2)[..., complement]


def combine_strand_logits(strand_logits: torch.Tensor, complement: torch.Tensor, scale: float = 1.0):
    """(2 * batch, L, V) logits of [x; rc(x)] -> (batch, L, V): scale * (fwd + rc_logits(rev)).

    scale 1 is the Caduceus-PS LM head (a sum); scale 0.5 averages the strands (Caduceus-Ph
    post-hoc conjoining). Either way the result is RC-equivariant."""
    fwd, rev = strand_logits.chunk(2, dim=0)
    out = fwd + rc_logits(rev, complement)
    return out if scale == 1.0 else out * scale
