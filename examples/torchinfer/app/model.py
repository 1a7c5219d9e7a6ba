"""The torchinfer example's model and data, shared by train.py and infer.py.

A small MLP (64 -> 32 -> 10, ReLU) that classifies synthetic "digits":
ten seeded 8x8 prototype patterns, each sample a prototype plus seeded
noise. Everything is generated from fixed seeds, so the repo trains its own
model; nothing is downloaded.
"""
import numpy as np
import torch

INPUTS, HIDDEN, CLASSES = 64, 32, 10


def deterministic():
    # One thread and deterministic kernels: the same float32 operations in
    # the same order on every miner; what differs across CPUs (SIMD width,
    # FMA) stays within the job's rel_tol.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)


def make_model():
    return torch.nn.Sequential(
        torch.nn.Linear(INPUTS, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, CLASSES),
    )


def prototypes():
    rng = np.random.default_rng(2026)
    return (rng.random((CLASSES, INPUTS)) > 0.5).astype(np.float32)


def samples(n, seed):
    """n noisy samples of the prototypes and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, size=n)
    x = prototypes()[labels] + rng.normal(0.0, 1.1, size=(n, INPUTS)).astype(np.float32)
    return x.astype(np.float32), labels.astype(np.int64)
