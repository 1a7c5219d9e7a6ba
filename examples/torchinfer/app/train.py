"""Trains the torchinfer model on synthetic data and writes its weights
(a torch state_dict) and the sample input the job classifies.

    python3 train.py OUTDIR     # writes OUTDIR/weights.pt and OUTDIR/x.npy, OUTDIR/labels.npy

Run it inside the example's image (examples/torchinfer/train.sh does);
the committed weights.pt and data/ came from it.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import deterministic, make_model, samples  # noqa: E402


def main(out):
    deterministic()
    model = make_model()
    x, y = samples(4096, seed=1)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(20):
        for i in range(0, len(xs), 128):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xs[i:i + 128]), ys[i:i + 128])
            loss.backward()
            opt.step()
    tx, ty = samples(256, seed=7)
    with torch.no_grad():
        acc = (model(torch.from_numpy(tx)).argmax(1).numpy() == ty).mean()
    print(f"trained: final batch loss {loss.item():.4f}, accuracy on 256 held-out samples {acc:.3f}")
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "weights.pt"))
    np.save(os.path.join(out, "x.npy"), tx)
    np.save(os.path.join(out, "labels.npy"), ty)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
