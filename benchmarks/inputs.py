"""What the benchmarks feed the models: seeded random one-hot sequences, and NAME:LENGTH model entries."""

import numpy as np


def random_sequences(count, length, seed=0):
    """(count, length, 4) float32 one-hot sequences, the same for the same arguments."""
    return np.eye(4, dtype=np.float32)[np.random.default_rng(seed).integers(0, 4, (count, length))]


def model_entry(entry):
    """"NAME:LENGTH" -> (name, length)."""
    name, length = entry.split(":")
    return name, int(length)
