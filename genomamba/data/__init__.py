"""Tokens, FASTA tokenization, HDF5 shards and the ``Genome`` reader."""

from genomamba.data.genome import Genome
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

__all__ = ["Genome", "VOCAB", "VOCAB_SIZE", "COMPLEMENT", "PAD", "MASK", "encode", "decode", "reverse_complement"]
