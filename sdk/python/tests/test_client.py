"""The Python SDK against a real devnet: submit the examples, follow their
stages from the live feed, read their results."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import unittest
from typing import Any, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import vft  # noqa: E402
from devnet import ROOT, Devnet  # noqa: E402

import importlib

numpy: Any
try:
    numpy = importlib.import_module("numpy")
except ImportError:
    numpy = None


NET: Devnet


def setUpModule() -> None:
    global NET
    NET = Devnet(miners=3)


def tearDownModule() -> None:
    NET.stop()


class ClientTest(unittest.TestCase):
    def setUp(self) -> None:
        self.client = vft.Client(repo=NET.submitter["repo"])
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_finds_daemon_like_cli(self) -> None:
        old = os.environ.get("VFT_PATH")
        os.environ["VFT_PATH"] = NET.submitter["repo"]
        try:
            c = vft.Client()
        finally:
            if old is None:
                del os.environ["VFT_PATH"]
            else:
                os.environ["VFT_PATH"] = old
        self.assertEqual(c.id()["peer_id"], NET.submitter["peer_id"])
        self.assertEqual(c.base, "http://" + NET.submitter["api"])

    def test_no_daemon(self) -> None:
        with self.assertRaisesRegex(vft.DaemonNotFound, "vft daemon"):
            vft.Client(repo=self.tmp.name)

    def test_wrong_token_carries_api_message(self) -> None:
        c = vft.Client(repo=NET.submitter["repo"], token="0" * 64)
        with self.assertRaises(vft.APIError) as e:
            c.nodes()
        self.assertEqual(e.exception.status, 401)
        self.assertIn("api.token", e.exception.message)

    def test_nodes_wallet_openapi(self) -> None:
        miners = [n for n in self.client.nodes() if not n.get("self")]
        self.assertGreaterEqual(len(miners), 3)
        self.assertEqual(self.client.wallet()["mint"], NET.info["mint"])
        self.assertEqual(self.client.openapi()["openapi"], "3.1.0")

    def test_add_get_roundtrip(self) -> None:
        src = os.path.join(self.tmp.name, "in")
        os.mkdir(src)
        with open(os.path.join(src, "a.txt"), "w") as f:
            f.write("hello")
        cid = self.client.add(src)
        out = os.path.join(self.tmp.name, "out")
        res = self.client.get(cid, out)
        self.assertEqual(res["cid"], cid)
        with open(os.path.join(out, "a.txt")) as f:
            self.assertEqual(f.read(), "hello")

    def test_submit_spec_file_wait_result(self) -> None:
        stages: List[str] = []
        job = self.client.submit(spec=os.path.join(ROOT, "examples", "wordcount", "job.toml"))
        rec = job.wait(timeout=240, progress=lambda change, rec: stages.append(change["state"]))
        self.assertEqual(rec["state"], "done")
        self.assertEqual(job.status(), "done")
        self.assertEqual(stages[0], "offered")
        self.assertEqual(stages[-1], "done")
        self.assertIn("verifying", stages)
        out = job.result(os.path.join(self.tmp.name, "result"))
        with open(os.path.join(out, "counts.tsv")) as got, \
                open(os.path.join(ROOT, "examples", "wordcount", "expected", "texts", "counts.tsv")) as want:
            self.assertEqual(got.read(), want.read())

    def test_submit_wasm_nninfer(self) -> None:
        job = self.client.submit(
            wasm=os.path.join(ROOT, "bin", "examples", "nninfer.wasm"),
            inputs=[os.path.join(ROOT, "examples", "nninfer", "testdata") + "/"],
            redundancy=3, reward=5000, timeout="1m", memory=256 << 20, seed=42)
        job.wait(timeout=240, progress=False)
        with open(os.path.join(ROOT, "examples", "nninfer", "expected", "blobs", "predictions.json")) as f:
            self.assertEqual(job.result_json("predictions.json"), json.load(f))

    def test_cancel(self) -> None:
        # Cancelled at once, long before its workers (compiling the module
        # alone takes seconds) could finish it.
        job = self.client.submit(wasm=os.path.join(ROOT, "bin", "examples", "wordcount.wasm"), reward=5000,
                                 redundancy=3)
        job.cancel("test")
        with self.assertRaises(vft.JobFailed) as e:
            job.wait(timeout=60, progress=False)
        self.assertEqual(e.exception.record["state"], "cancelled")

    def test_bad_input_named(self) -> None:
        with self.assertRaisesRegex(ValueError, "no-such-thing"):
            self.client.submit(wasm="bafkqaaa", inputs=["no-such-thing"])
        with self.assertRaisesRegex(ValueError, "no-such-module.wasm"):
            self.client.submit(wasm="no-such-module.wasm")
        with self.assertRaisesRegex(ValueError, "busybox:latest.*not a CID"):
            self.client.submit(image="busybox:latest")
        with self.assertRaisesRegex(ValueError, "reward"):
            self.client.submit(spec=os.path.join(ROOT, "examples", "wordcount", "job.toml"), reward=1)

    def test_result_array(self) -> None:
        if numpy is None:
            job = vft.Job(self.client, "x")
            job._result_dir = self.tmp.name
            with self.assertRaisesRegex(vft.VFTError, "NumPy"):
                job.result_array("a.npy")
            return
        src = os.path.join(self.tmp.name, "src")
        os.mkdir(src)
        numpy.save(os.path.join(src, "a.npy"), numpy.arange(6).reshape(2, 3))
        out = os.path.join(self.tmp.name, "res")
        self.client.get(self.client.add(src), out)
        job = vft.Job(self.client, "x")
        job._result_dir = out
        self.assertEqual(job.result_array("a.npy").tolist(), [[0, 1, 2], [3, 4, 5]])


class DurationTest(unittest.TestCase):
    def test_parse(self) -> None:
        cases: List[Any] = [(90, 90.0), ("90s", 90.0), ("2m", 120.0), ("1h30m", 5400.0), ("500ms", 0.5)]
        for value, want in cases:
            self.assertEqual(vft.client.parse_duration(value), want)
        bad: Any
        for bad in ("2 weeks", "", -1):
            with self.assertRaises(ValueError):
                vft.client.parse_duration(bad)


if __name__ == "__main__":
    unittest.main()
