"""The torchinfer job: classifies /input/data/x.npy with the weights at
/input/model and writes the logits to /output/logits.npy (float32, one
row per sample) and the predicted classes to /output/classes.npy.

Every miner runs it in the same image; the submitter compares the logits
with verify = "tolerance" (float32 sums may round differently on
different CPUs).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import deterministic, make_model  # noqa: E402


def main(model_path="/input/model", data="/input/data/x.npy", out="/output"):
    deterministic()
    model = make_model()
    model.load_state_dict(torch.load(model_path, map_location="cpu"))
    model.eval()
    x = torch.from_numpy(np.load(data))
    with torch.no_grad():
        logits = model(x)
    np.save(os.path.join(out, "logits.npy"), logits.numpy().astype(np.float32))
    np.save(os.path.join(out, "classes.npy"), logits.argmax(1).numpy().astype(np.int64))
    print(f"torch {torch.__version__}: {x.shape[0]} samples -> {out}/logits.npy {tuple(logits.shape)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
