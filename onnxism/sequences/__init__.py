"""Sequences in: one-hot arrays and FASTA files, validated, served chunk by chunk."""

from .files import read_sequences
from .onehot import ALPHABET, Sequences, as_sequences, reference_bases

__all__ = ["ALPHABET", "Sequences", "as_sequences", "reference_bases", "read_sequences"]
