"""A real local VFT network for the SDK tests: ``vft devnet`` (a Solana
localnet, miners and a submitter, as separate processes on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from typing import Any, Dict, Optional

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
VFT = os.environ.get("VFT_BIN", os.path.join(ROOT, "bin", "vft"))


class Devnet:
    """Starts ``vft devnet --miners N`` and stops it (SIGINT, as Ctrl-C)."""

    def __init__(self, miners: int = 3):
        for need in (VFT, os.path.join(ROOT, "bin", "examples", "nninfer.wasm")):
            if not os.path.exists(need):
                raise RuntimeError(f"{need} is missing: run `make build examples localnet-deps` first")
        self.tmp = tempfile.TemporaryDirectory(prefix="vft-sdk-py-")
        self.dir = os.path.join(self.tmp.name, "net")
        self.log = open(os.path.join(self.tmp.name, "devnet.log"), "w+")
        self.proc: Optional[subprocess.Popen[str]] = subprocess.Popen(
            [VFT, "devnet", "--miners", str(miners), "--dir", self.dir],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.monotonic() + 240
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("devnet ready"):
                break
            if time.monotonic() > deadline:
                break
        else:
            self.stop()
            raise RuntimeError(f"vft devnet exited before it was ready:\n{self.logs()}")
        with open(os.path.join(self.dir, "devnet.json")) as f:
            self.info: Dict[str, Any] = json.load(f)
        self.submitter = next(n for n in self.info["nodes"] if n["name"] == "submitter")
        self._wait_for_miners(miners)

    def _wait_for_miners(self, miners: int) -> None:
        """The submitter's network table fills from heartbeats."""
        import sys
        sys.path.insert(0, os.path.join(ROOT, "sdk", "python"))
        import vft
        client = vft.Client(repo=self.submitter["repo"])
        deadline = time.monotonic() + 120
        while sum(1 for n in client.nodes() if not n.get("self")) < miners and time.monotonic() < deadline:
            time.sleep(0.2)

    def logs(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None
        self.log.close()
        self.tmp.cleanup()
