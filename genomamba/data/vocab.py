"""The fixed nucleotide vocabulary.

Token ids (uint8):

    0 A   1 C   2 G   3 T   4 N   5 [PAD]   6 [MASK]

Nucleotides come first so that ``3 - t`` complements A/C/G/T. ``COMPLEMENT`` maps
A<->T, C<->G and every other token to itself. Encoding upper-cases, turns U into T
and the IUPAC ambiguity codes (R Y K M S W B D H V) into N; any other byte is
invalid (see ``genomamba.data.fasta`` for how the tokenizer reports it).
"""

from __future__ import annotations

import numpy as np

VOCAB: tuple[str, ...] = ("A", "C", "G", "T", "N", "[PAD]", "[MASK]")
TOKEN_ID: dict[str, int] = {tok: i for i, tok in enumerate(VOCAB)}
A, C, G, T, N, PAD, MASK = range(7)
VOCAB_SIZE = len(VOCAB)
NUCLEOTIDES = (A, C, G, T)

#: complement of every token id (A<->T, C<->G, N and specials to themselves)
COMPLEMENT = np.array([T, G, C, A, N, PAD, MASK], dtype=np.uint8)

IUPAC_AMBIGUOUS = b"RYKMSWBDHV"
INVALID = 255

#: byte -> token id, INVALID for bytes that are not nucleotides
BYTE_TO_TOKEN = np.full(256, INVALID, dtype=np.uint8)
for _case in (str.upper, str.lower):
    for _base, _tok in (("A", A), ("C", C), ("G", G), ("T", T), ("U", T), ("N", N)):
        BYTE_TO_TOKEN[ord(_case(_base))] = _tok
    for _code in IUPAC_AMBIGUOUS.decode():
        BYTE_TO_TOKEN[ord(_case(_code))] = N

#: byte -> 1 for IUPAC ambiguity codes (counted and reported when they become N)
IS_AMBIGUOUS = np.zeros(256, dtype=bool)
for _code in IUPAC_AMBIGUOUS:
    IS_AMBIGUOUS[_code] = IS_AMBIGUOUS[ord(chr(_code).lower())] = True

#: byte -> 1 for lowercase letters (soft-masked bases)
IS_LOWER = np.zeros(256, dtype=bool)
IS_LOWER[ord("a") : ord("z") + 1] = True

#: token id -> upper-case ASCII letter (A C G T N); other ids -> "?"
DECODE_BYTES = np.frombuffer(b"ACGTN" + b"?" * 251, dtype=np.uint8)
_DECODE = DECODE_BYTES

# BYTE_CLASS: byte -> token id in bits 0-2, plus flags, in one lookup. The FASTA
# tokenizer applies this single table to every base and then splits the result
# with cheap bit operations (token = c & TOKEN_BITS, lowercase = c & LOWER_FLAG).
TOKEN_BITS = 0x07
#: set for bytes that were changed on the way to a token: IUPAC codes (-> N) and U (-> T)
CONVERTED_FLAG = 0x08
#: set for lowercase (soft-masked) bases
LOWER_FLAG = 0x10
#: class of a U/u byte and of an IUPAC ambiguity byte, once LOWER_FLAG is cleared
URACIL_CLASS = T | CONVERTED_FLAG
AMBIGUOUS_CLASS = N | CONVERTED_FLAG
#: INVALID (255) has every bit set, so ``bitwise_or.reduce(classes) & INVALID_FLAG`` finds it
INVALID_FLAG = 0x80

BYTE_CLASS = BYTE_TO_TOKEN.copy()
_valid = BYTE_TO_TOKEN != INVALID
BYTE_CLASS[_valid & IS_LOWER] |= LOWER_FLAG
BYTE_CLASS[IS_AMBIGUOUS] |= CONVERTED_FLAG
BYTE_CLASS[[ord("U"), ord("u")]] |= CONVERTED_FLAG
del _valid

#: the same lookup over byte pairs: a uint16 view of the bytes indexes it, so one gather
#: classifies two bases, twice as fast as one gather per byte (built through views, so
#: it holds on either byte order)
PAIR_CLASS = BYTE_CLASS[np.arange(1 << 16, dtype=np.uint16).view(np.uint8)].view(np.uint16)


def encode(seq: str | bytes) -> np.ndarray:
    """Sequence -> uint8 token ids. Raises ValueError naming the first invalid character."""
    raw = np.frombuffer(seq.encode("ascii") if isinstance(seq, str) else bytes(seq), dtype=np.uint8)
    tokens = BYTE_TO_TOKEN[raw]
    bad = np.flatnonzero(tokens == INVALID)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"invalid nucleotide {chr(raw[i])!r} at position {i}")
    return tokens


def decode(tokens) -> str:
    """Token ids -> string; nucleotides and N as letters, [PAD]/[MASK] as their names."""
    arr = np.asarray(tokens, dtype=np.uint8)
    if arr.size and arr.max() <= N:
        return _DECODE[arr].tobytes().decode("ascii")
    return "".join(VOCAB[int(t)] for t in arr)


def reverse_complement(tokens):
    """Reverse complement of a token array along its last axis (numpy array or torch tensor)."""
    if isinstance(tokens, np.ndarray):
        return COMPLEMENT[tokens[..., ::-1]]
    import torch

    comp = torch.as_tensor(COMPLEMENT, device=tokens.device).to(tokens.dtype if not tokens.dtype.is_floating_point else torch.long)
    return comp[tokens.flip(-1).long()].to(tokens.dtype)
