"""The client: finds the daemon, calls its API, follows jobs.

The API is the one described by ``GET /api/v1/openapi.json`` (the file
``api/openapi.json`` in the VFT repository). Paths given to :meth:`Client.add`,
:meth:`Client.get` and :meth:`Client.submit` are paths on *this* machine: the
API listens on loopback only, and the daemon reads and writes them itself.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union, cast

__all__ = ["APIError", "Client", "DaemonNotFound", "Job", "JobFailed", "VFTError"]

PathLike = Union[str, "os.PathLike[str]"]
Record = Dict[str, Any]
"""A job record as the API returns it (schema ``JobRecord``)."""

ProgressFn = Callable[[Record, Record], None]
"""Called with (history entry, record) for every stage a job reaches."""

TERMINAL_STATES = ("done", "failed", "cancelled")

# The CLI's defaults for a job given by flags (job.FileSpec.Resolve).
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_MEMORY = 512 << 20
DEFAULT_DEADLINE_S = 3600.0

_CID = re.compile(r"^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{6,})$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


class VFTError(Exception):
    """Every error this package raises."""


class DaemonNotFound(VFTError):
    """No daemon runs for the repo, or none answers at its address."""


class APIError(VFTError):
    """The daemon refused a call. ``message`` is the API's own error text."""

    def __init__(self, status: int, message: str, method: str = "", path: str = ""):
        super().__init__(f"{method} {path}: {status}: {message}".strip())
        self.status = status
        self.message = message


class JobFailed(VFTError):
    """A job ended without an accepted result (failed or cancelled)."""

    def __init__(self, record: Record):
        super().__init__(f"job {record.get('id')} {record.get('state')}: {record.get('reason') or 'no reason given'}")
        self.record = record


def find_repo(repo: Optional[PathLike] = None) -> str:
    """The repo directory as the CLI picks it: ``repo``, else ``$VFT_PATH``, else ``~/.vft``."""
    d = os.fspath(repo) if repo else os.environ.get("VFT_PATH") or "~/.vft"
    return os.path.abspath(os.path.expanduser(d))


def parse_duration(value: Union[float, int, str]) -> float:
    """Seconds from a number of seconds or a Go-style duration ("90s", "2m", "1h30m")."""
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"duration {value!r} must be positive")
        return float(value)
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        raise ValueError(f"duration {value!r} is not a number of seconds or like 90s, 2m, 1h30m")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


class Client:
    """A connection to a running ``vft daemon``.

    :param repo: the node's repo directory (default ``$VFT_PATH``, else ``~/.vft``),
        whose ``api`` file holds the daemon's address and ``api.token`` its token.
    :param api: the daemon's address (``127.0.0.1:5001`` or ``http://127.0.0.1:5001``),
        instead of the repo's ``api`` file.
    :param token: the API token, instead of the repo's ``api.token``.
    :param timeout: seconds a short call may take (adding and fetching data
        stream progress and are not bounded).
    """

    def __init__(self, repo: Optional[PathLike] = None, api: Optional[str] = None,
                 token: Optional[str] = None, timeout: float = 60.0):
        self.repo = find_repo(repo)
        if api is None:
            try:
                with open(os.path.join(self.repo, "api"), encoding="utf-8") as f:
                    api = f.read().strip()
            except FileNotFoundError:
                raise DaemonNotFound(f"no daemon is running for repo {self.repo} (no {self.repo}/api file): "
                                     "start one with `vft daemon`, or pass repo= or api=") from None
        if token is None:
            try:
                with open(os.path.join(self.repo, "api.token"), encoding="utf-8") as f:
                    token = f.read().strip()
            except FileNotFoundError:
                raise DaemonNotFound(f"no API token at {self.repo}/api.token: run `vft init` "
                                     "or pass the token with token=") from None
        self.base = api if api.startswith("http://") else "http://" + api
        self.token = token
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"vft.Client({self.base!r}, repo={self.repo!r})"

    # --- plumbing -------------------------------------------------------

    def _open(self, method: str, path: str, body: Any = None, timeout: Optional[float] = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            return urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                message = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode(errors="replace").strip() or e.reason
            raise APIError(e.code, message, method, path) from None
        except urllib.error.URLError as e:
            raise DaemonNotFound(f"no daemon answers at {self.base} ({e.reason}): is `vft daemon` running "
                                 f"for repo {self.repo}?") from None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON call: ``call("GET", "/api/v1/peers")``. Raises :class:`APIError`."""
        with self._open(method, path, body, self.timeout) as resp:
            return json.load(resp)

    def _stream(self, path: str, body: Any, progress: Optional[Callable[[int, int], None]]) -> Any:
        """A call answered with progress lines, then the result or an error line."""
        with self._open("POST", path, body, None) as resp:
            for line in resp:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("error"):
                    raise APIError(422, event["error"], "POST", path)
                if "result" in event:
                    return event["result"]
                if progress is not None:
                    progress(event.get("done", 0), event.get("total", 0))
        raise VFTError(f"POST {path}: the daemon closed the connection before answering (did it stop?)")

    # --- node -------------------------------------------------------------

    def id(self) -> Dict[str, Any]:
        """This node's identity: ``peer_id``, ``wallet``, ``mode``, ``version``, ``addrs``."""
        return cast(Dict[str, Any], self.call("GET", "/api/v1/id"))

    def health(self) -> Dict[str, Any]:
        """Peer and node counts and clock skew."""
        return cast(Dict[str, Any], self.call("GET", "/api/v1/health"))

    def peers(self) -> List[Dict[str, Any]]:
        """Connected peers."""
        return cast(List[Dict[str, Any]], self.call("GET", "/api/v1/peers"))

    def nodes(self) -> List[Dict[str, Any]]:
        """The live network table (heartbeats), with this node's reputation of each."""
        return cast(List[Dict[str, Any]], self.call("GET", "/api/v1/nodes"))

    def wallet(self) -> Dict[str, Any]:
        """The wallet: ``address``, ``balance`` (lamports), ``mint``, ``token_balance`` (base units)."""
        return cast(Dict[str, Any], self.call("GET", "/api/v1/wallet"))

    def earnings(self, recent: int = 20) -> Dict[str, Any]:
        """What this node earned as a worker and paid as a submitter."""
        return cast(Dict[str, Any], self.call("GET", f"/api/v1/earnings?recent={int(recent)}"))

    def openapi(self) -> Dict[str, Any]:
        """The API's OpenAPI 3.1 document."""
        return cast(Dict[str, Any], self.call("GET", "/api/v1/openapi.json"))

    # --- content ----------------------------------------------------------

    def add(self, path: PathLike, pin: bool = True, hidden: bool = False,
            progress: Optional[Callable[[int, int], None]] = None) -> str:
        """Import a file or directory into the node's content store; returns its CID.

        Files and directories whose names start with a dot are skipped unless ``hidden``.
        """
        p = os.path.abspath(os.fspath(path))
        if not os.path.exists(p):
            raise FileNotFoundError(f"add {p}: no such file or directory")
        res = self._stream("/api/v1/add", {"path": p, "no_pin": not pin, "hidden": hidden}, progress)
        return str(res["cid"])

    def get(self, cid: str, path: PathLike, progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, Any]:
        """Write ``cid``'s content to ``path`` (fetching what is missing from the network).

        Returns ``{"cid", "output", "blocks", "bytes", "fetched"}``.
        """
        return cast(Dict[str, Any], self._stream("/api/v1/get", {"cid": cid, "output": os.path.abspath(os.fspath(path))}, progress))

    # --- jobs -------------------------------------------------------------

    def submit(self, wasm: Optional[PathLike] = None, *, spec: Optional[PathLike] = None,
               image: Optional[str] = None, command: Sequence[str] = (),
               inputs: Sequence[PathLike] = (), args: Sequence[str] = (),
               env: Optional[Dict[str, str]] = None, redundancy: int = 1, verify: str = "exact",
               quorum: int = 0, reward: int = 0, timeout: Union[float, str] = DEFAULT_TIMEOUT_S,
               memory: int = DEFAULT_MEMORY, seed: int = 0, mint: str = "",
               deadline: Union[float, str] = DEFAULT_DEADLINE_S) -> "Job":
        """Offer a job to the network; returns its :class:`Job` at once.

        Give exactly one of:

        * ``spec``: a job spec file (the TOML of ``vft job submit``). The daemon
          reads and resolves it exactly as the CLI does (its module and inputs
          are added first); the other arguments must then be left out.
        * ``wasm``: a WASM module file, added to the content store first, or
          the CID of a module already added.
        * ``image``: the CID of an OCI image layout (``vft image import``), run by
          the ``oci`` executor: its entrypoint, or ``command``.

        ``inputs`` are mounted read-only under ``/input``: a path is added first,
        rsync-style (``"dir/"`` mounts the directory's contents at ``/input``,
        ``"dir"`` or ``"file"`` mounts it at ``/input/NAME``, ``"src:name"`` at
        ``/input/name``); a CID mounts at ``/input``, ``"CID:name"`` at ``/input/name``.
        ``redundancy`` workers run it and ``quorum`` of them (default a majority)
        must agree (``verify="exact"``). ``reward`` is paid per accepted worker in the
        smallest unit of the node's currency. ``timeout`` is per worker (seconds,
        or "2m"); ``deadline`` is how long the node looks for workers and results.
        """
        if sum(x is not None for x in (wasm, spec, image)) != 1:
            raise ValueError("give exactly one of wasm= (a module file), spec= (a job spec file) or image= (a module CID)")
        if spec is not None:
            extra = [k for k, v in (("inputs", inputs), ("args", args), ("env", env), ("command", command)) if v]
            extra += [k for k, v, d in (("redundancy", redundancy, 1), ("verify", verify, "exact"), ("quorum", quorum, 0),
                                        ("reward", reward, 0), ("timeout", timeout, DEFAULT_TIMEOUT_S),
                                        ("memory", memory, DEFAULT_MEMORY), ("seed", seed, 0), ("mint", mint, ""),
                                        ("deadline", deadline, DEFAULT_DEADLINE_S)) if v != d]
            if extra:
                raise ValueError(f"spec= takes its settings from the file; {', '.join(extra)} "
                                 "must go into the spec file (or use wasm= with these arguments)")
            p = os.path.abspath(os.fspath(spec))
            if not os.path.isfile(p):
                raise FileNotFoundError(f"job spec {p} does not exist")
            return Job(self, self.call("POST", "/api/v1/jobs/file", {"path": p})["id"])
        if redundancy < 1:
            raise ValueError(f"redundancy={redundancy}: at least 1 worker")
        if verify not in ("exact", "tolerance", "spot", "custom"):
            raise ValueError(f"verify={verify!r}: use exact, tolerance, spot or custom")
        policy: Dict[str, Any] = {"Mode": verify, "Workers": redundancy,
                                  "Quorum": quorum or (0 if verify == "spot" else redundancy // 2 + 1)}
        if image is not None:
            if not _CID.match(image):
                raise ValueError(f"image={image!r} is not a CID: add the image first (`vft image import`)")
            code: Dict[str, Any] = {"Executor": "oci", "Image": image, "Command": list(command)}
        else:
            if command:
                raise ValueError("command= runs in an image: give image= (an OCI image CID), not wasm=")
            code = {"Executor": "wasm", "Module": self._module(wasm)}
        spec_json = {
            **code, "Inputs": [self._input(i) for i in inputs],
            "Args": [str(a) for a in args], "Env": dict(env or {}), "Seed": seed,
            "Needs": {"MemoryBytes": memory, "TimeoutMS": int(parse_duration(timeout) * 1000)},
            "Verify": policy, "Reward": reward, "Mint": mint,
            "Deadline": int((time.time() + parse_duration(deadline)) * 1000),
            "Nonce": base64.b64encode(secrets.token_bytes(16)).decode(),
        }
        return Job(self, self.call("POST", "/api/v1/jobs", spec_json)["id"])

    def _module(self, wasm: Optional[PathLike]) -> str:
        src = os.fspath(wasm or "")
        if os.path.isfile(src):
            return self.add(src)
        if _CID.match(src):
            return src
        raise ValueError(f"wasm={src!r} is neither a module file nor a CID")

    def _input(self, item: PathLike) -> Dict[str, str]:
        s = os.fspath(item)
        src, mount = s, None
        if ":" in s.rstrip(":")[1:]:
            src, mount = s.rsplit(":", 1)
        if os.path.exists(src):
            if mount is None:
                mount = "" if src.endswith("/") else os.path.basename(os.path.normpath(src))
            return {"CID": self.add(src.rstrip("/") or "/"), "Path": mount}
        if _CID.match(src):
            return {"CID": src, "Path": mount or ""}
        raise ValueError(f"input {s!r} is neither an existing path nor a CID")

    def job(self, id: str) -> "Job":
        """A handle on a job this node knows."""
        return Job(self, id)

    def jobs(self) -> List[Record]:
        """Every job this node knows, as submitter or worker."""
        return cast(List[Record], self.call("GET", "/api/v1/jobs"))

    def events(self, timeout: Optional[float] = None) -> Iterator[Tuple[str, Any]]:
        """The live feed: yields ``(type, data)`` for every event (``job``, ``status``, ``log``,
        ``resync``). ``timeout`` bounds the wait for each line (keep-alives come every 15 s);
        :class:`socket.timeout` is raised when it passes."""
        resp = self._open("GET", "/api/v1/events", None, timeout)
        with resp:
            yield from _read_events(resp)


def _read_events(resp: IO[bytes]) -> Iterator[Tuple[str, Any]]:
    typ, data = "", ""
    for raw in resp:
        line = raw.decode().rstrip("\r\n")
        if line == "":
            if typ and data:
                yield typ, json.loads(data)
            typ, data = "", ""
        elif line.startswith("event: "):
            typ = line[len("event: "):]
        elif line.startswith("data: "):
            data = line[len("data: "):]


class Job:
    """A job this node submitted (or works on)."""

    def __init__(self, client: Client, id: str):
        self.client = client
        self.id = id
        self._result_dir: Optional[str] = None

    def __repr__(self) -> str:
        return f"vft.Job({self.id!r})"

    def record(self) -> Record:
        """The job's full record (``GET /api/v1/jobs/{id}``)."""
        return cast(Record, self.client.call("GET", f"/api/v1/jobs/{urllib.parse.quote(self.id)}"))

    def status(self) -> str:
        """The job's state: offered, assigned, running, verifying, settling, done, failed or cancelled."""
        return str(self.record()["state"])

    def cancel(self, reason: str = "cancelled from the Python SDK") -> None:
        """Withdraw the job."""
        self.client.call("POST", f"/api/v1/jobs/{urllib.parse.quote(self.id)}/cancel", {"reason": reason})

    def wait(self, timeout: Optional[float] = None, progress: Union[bool, ProgressFn] = True,
             check: bool = True) -> Record:
        """Wait until the job is done, failed or cancelled, following the live event feed.

        :param progress: ``True`` prints each stage to stderr as it happens (as
            ``vft job submit --wait`` does); a function gets ``(change, record)``.
        :param check: raise :class:`JobFailed` unless the job is done.
        :raises TimeoutError: after ``timeout`` seconds; the job goes on.
        :returns: the final record.
        """
        show: Optional[ProgressFn] = None
        if progress is True:
            show = _print_change
        elif callable(progress):
            show = progress
        deadline = None if timeout is None else time.monotonic() + timeout
        shown = 0

        def follow(rec: Record) -> bool:
            nonlocal shown
            history = rec.get("history") or []
            for change in history[shown:]:
                if show is not None:
                    show(change, rec)
            shown = max(shown, len(history))
            return rec.get("state") in TERMINAL_STATES

        rec: Record = {}
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"job {self.id} is still {rec.get('state')} after {timeout} s; it goes on: "
                                   f"job.wait() again or job.status()")
            try:
                # Subscribe first (the daemon subscribes before it answers
                # the headers), then read the record: no change is missed.
                resp = self.client._open("GET", "/api/v1/events", None, min(30.0, remaining) if remaining else 30.0)
                with resp:
                    rec = self.record()
                    if follow(rec):
                        break
                    for typ, data in _read_events(resp):
                        if typ == "job" and isinstance(data, dict) and data.get("id") == self.id:
                            rec = data
                        elif typ == "resync":
                            rec = self.record()
                        elif deadline is None or time.monotonic() < deadline:
                            continue
                        if follow(rec) or (deadline is not None and time.monotonic() > deadline):
                            break
                if rec.get("state") in TERMINAL_STATES:
                    break
            except (socket.timeout, TimeoutError):
                continue
            except APIError as e:
                if e.status != 404:
                    raise
                # A node without the live feed (edge mode): poll.
                rec = self.record()
                if follow(rec):
                    break
                time.sleep(0.5)
        if check and rec.get("state") != "done":
            raise JobFailed(rec)
        return rec

    def result(self, path: PathLike) -> str:
        """Write the accepted result to ``path`` (a new file or directory); returns its absolute path."""
        rec = self.record()
        if rec.get("state") != "done" or not rec.get("result"):
            raise JobFailed(rec) if rec.get("state") in TERMINAL_STATES else VFTError(
                f"job {self.id} is {rec.get('state')}, not done: job.wait() first")
        out = os.path.abspath(os.fspath(path))
        self.client.get(rec["result"], out)
        return out

    def _local_result(self) -> str:
        if self._result_dir is None:
            d = tempfile.mkdtemp(prefix=f"vft-{self.id[:12]}-")
            self.result(os.path.join(d, "result"))
            self._result_dir = os.path.join(d, "result")
        return self._result_dir

    def read_result(self, name: str) -> bytes:
        """The bytes of one file of the result (fetched once into a temporary directory)."""
        root = self._local_result()
        p = root if os.path.isfile(root) else os.path.join(root, name)
        if not os.path.isfile(p):
            have = sorted(os.listdir(root)) if os.path.isdir(root) else [os.path.basename(root)]
            raise FileNotFoundError(f"job {self.id}'s result has no {name!r}; it has {have}")
        with open(p, "rb") as f:
            return f.read()

    def result_json(self, name: str) -> Any:
        """One JSON file of the result, parsed."""
        return json.loads(self.read_result(name))

    def result_array(self, name: str) -> Any:
        """One ``.npy`` file of the result as a NumPy array (needs NumPy)."""
        import importlib
        try:
            numpy = importlib.import_module("numpy")
        except ImportError:
            raise VFTError("result_array needs NumPy (pip install numpy, or apt-get install python3-numpy); "
                           "read_result(name) gives the raw bytes") from None
        import io
        return numpy.load(io.BytesIO(self.read_result(name)), allow_pickle=False)


def _print_change(change: Record, rec: Record) -> None:
    at = str(change.get("at", ""))[11:19]
    note = change.get("note") or ""
    print(f"  {change.get('state', ''):<10} {at}  {note}".rstrip(), file=sys.stderr, flush=True)
