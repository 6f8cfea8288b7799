import numpy as np
import pytest

from genomamba.data import vocab
from genomamba.data.vocab import (
    BYTE_CLASS,
    BYTE_TO_TOKEN,
    COMPLEMENT,
    INVALID,
    IS_AMBIGUOUS,
    IS_LOWER,
    LOWER_FLAG,
    PAIR_CLASS,
    TOKEN_BITS,
    decode,
    encode,
    reverse_complement,
)


def test_ids_are_fixed():
    assert vocab.VOCAB == ("A", "C", "G", "T", "N", "[PAD]", "[MASK]")
    assert (vocab.A, vocab.C, vocab.G, vocab.T, vocab.N, vocab.PAD, vocab.MASK) == tuple(range(7))
    assert vocab.VOCAB_SIZE == 7


def test_encode_maps_case_uracil_and_iupac():
    assert encode("ACGTacgtNn").tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4, 4]
    assert encode("Uu").tolist() == [3, 3]
    codes = "RYKMSWBDHV"
    assert encode(codes + codes.lower()).tolist() == [4] * 20
    assert decode(encode("acgUrYn")) == "ACGTNNN"


@pytest.mark.parametrize("bad", ["AC-GT", "ACG T", "A1", "*", "AC.G", "AXG", "AC\nG"])
def test_encode_rejects_other_bytes(bad):
    with pytest.raises(ValueError, match="invalid nucleotide"):
        encode(bad)


def test_decode_specials():
    assert decode([0, 5, 6, 4]) == "A[PAD][MASK]N"


def test_complement_is_an_involution_and_pairs_bases():
    assert decode(COMPLEMENT[encode("ACGTN")]) == "TGCAN"
    assert (COMPLEMENT[COMPLEMENT] == np.arange(7)).all()
    assert COMPLEMENT[vocab.PAD] == vocab.PAD and COMPLEMENT[vocab.MASK] == vocab.MASK


def test_reverse_complement_numpy_and_torch():
    import torch

    rng = np.random.default_rng(0)
    x = rng.integers(0, 7, size=(3, 50)).astype(np.uint8)
    rc = reverse_complement(x)
    assert (reverse_complement(rc) == x).all()
    assert decode(reverse_complement(encode("AACGTN"))) == "NACGTT"
    t = torch.from_numpy(x.astype(np.int64))
    assert (reverse_complement(t).numpy() == rc).all()


def test_byte_class_agrees_with_the_documented_tables():
    valid = BYTE_TO_TOKEN != INVALID
    assert (BYTE_CLASS[~valid] == INVALID).all()
    assert (BYTE_CLASS[valid] & TOKEN_BITS == BYTE_TO_TOKEN[valid]).all()
    assert ((BYTE_CLASS[valid] & LOWER_FLAG) != 0).tolist() == IS_LOWER[valid].tolist()
    converted = (BYTE_CLASS[valid] & vocab.CONVERTED_FLAG) != 0
    expected = IS_AMBIGUOUS[valid] | np.isin(np.flatnonzero(valid), [ord("U"), ord("u")])
    assert converted.tolist() == expected.tolist()
    # only letters are valid, and the letters valid are exactly ACGTUN + IUPAC, either case
    assert bytes(np.flatnonzero(valid).astype(np.uint8)) == b"ABCDGHKMNRSTUVWYabcdghkmnrstuvwy"


def test_pair_class_is_byte_class_of_both_bytes():
    pairs = np.arange(1 << 16, dtype=np.uint16)
    as_bytes = pairs.view(np.uint8).reshape(-1, 2)
    got = PAIR_CLASS[pairs].view(np.uint8).reshape(-1, 2)
    assert (got == BYTE_CLASS[as_bytes]).all()
