# %% [markdown]
# # Neural-network inference on VFT, from Python
#
# A notebook in cells (`# %%`: Jupyter, VS Code and PyCharm run them one by
# one; `python3 examples/nninfer.py` runs them all). It submits the
# `examples/nninfer` job, a small neural network that classifies a batch of
# vectors, to three miners that must agree on the result, watches its
# stages and reads the predictions.
#
# You need a running node: `make demo`'s devnet, or `make build examples`
# then `./bin/vft devnet --miners 3` in another terminal, and
# `export VFT_PATH=<the submitter's repo it prints>`.

# %%
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "sdk", "python"))  # or: pip install --no-build-isolation ./sdk/python

import vft

client = vft.Client()  # repo: $VFT_PATH, else ~/.vft, like the CLI
print(client.id()["peer_id"], "sees", len(client.nodes()), "nodes")

# %% [markdown]
# Submit the example's spec file as `vft job submit` does: the daemon adds
# the module and the inputs it names and offers the job.

# %%
job = client.submit(spec=os.path.join(ROOT, "examples", "nninfer", "job.toml"))
print("job", job.id)

# %% [markdown]
# The stages, as they happen (from the node's live event feed).

# %%
record = job.wait(timeout=300)
print("accepted result", record["result"], "agreed:", record["verdict"]["agreed"])

# %%
predictions = job.result_json("predictions.json")
for i, p in enumerate(predictions["predictions"]):
    print(f"vector {i}: class {p['class']}  probabilities {p['probs']}")

# %% [markdown]
# The same job without a spec file: the module and inputs as paths (added
# first), the settings as arguments.

# %%
job2 = client.submit(
    wasm=os.path.join(ROOT, "bin", "examples", "nninfer.wasm"),
    inputs=[os.path.join(ROOT, "examples", "nninfer", "testdata") + "/"],
    redundancy=3, reward=5000, timeout="1m", memory=256 << 20, seed=42,
)
job2.wait(progress=False)
assert job2.result_json("predictions.json") == predictions
print("same predictions; wallet:", client.wallet())
