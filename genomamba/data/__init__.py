"""Tokens, FASTA tokenization, HDF5 shards and the ``Genome`` reader."""

from genomamba.data.vocab import (
    COMPLEMENT,
    MASK,
    PAD,
    VOCAB,
    VOCAB_SIZE,
    decode,
    encode,
    reverse_complement,
)

__all__ = ["VOCAB", "VOCAB_SIZE", "COMPLEMENT", "PAD", "MASK", "encode", "decode", "reverse_complement"]
