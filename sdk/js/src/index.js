// @vft/client: a VFT node's local API from Node.js 20 (built-in fetch) or
// from a browser page the daemon serves. The API is described by
// GET /api/v1/openapi.json (api/openapi.json in the VFT repository).
// Paths given to add, get and submit are paths on the daemon's machine:
// the API listens on loopback only and the daemon reads and writes them.

const TERMINAL = new Set(["done", "failed", "cancelled"]);
const CID = /^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{6,})$/;

/** The CLI's defaults for a job given by flags (job.FileSpec.Resolve). */
export const DEFAULT_TIMEOUT_S = 600;
export const DEFAULT_MEMORY = 512 * 1024 * 1024;
export const DEFAULT_DEADLINE_S = 3600;

/** Every error this package throws. */
export class VFTError extends Error {
  constructor(message) {
    super(message);
    this.name = "VFTError";
  }
}

/** No daemon runs for the repo, or none answers at its address. */
export class DaemonNotFound extends VFTError {
  constructor(message) {
    super(message);
    this.name = "DaemonNotFound";
  }
}

/** The daemon refused a call; `message` is the API's own error text. */
export class APIError extends VFTError {
  constructor(status, message, method = "", path = "") {
    super(`${method} ${path}: ${status}: ${message}`.trim());
    this.name = "APIError";
    this.status = status;
    this.apiMessage = message;
  }
}

/** A job ended without an accepted result (failed or cancelled). */
export class JobFailed extends VFTError {
  constructor(record) {
    super(`job ${record.id} ${record.state}: ${record.reason || "no reason given"}`);
    this.name = "JobFailed";
    this.record = record;
  }
}

// Node's built-in modules when running under Node, null in a browser.
function builtin(name) {
  const p = globalThis.process;
  return p && typeof p.getBuiltinModule === "function" ? p.getBuiltinModule(name) : null;
}

function nodeOnly(what) {
  const fs = builtin("node:fs");
  const path = builtin("node:path");
  if (!fs || !path) throw new VFTError(`${what} reads local files: it works in Node.js only`);
  return { fs, path };
}

/** The repo directory as the CLI picks it: repo, else $VFT_PATH, else ~/.vft. */
export function findRepo(repo) {
  const { path } = nodeOnly("finding the repo");
  const os = builtin("node:os");
  let dir = repo || globalThis.process.env.VFT_PATH || "~/.vft";
  if (dir === "~" || dir.startsWith("~/")) dir = path.join(os.homedir(), dir.slice(1));
  return path.resolve(dir);
}

/** Seconds from a number of seconds or a Go-style duration ("90s", "2m", "1h30m"). */
export function parseDuration(value) {
  if (typeof value === "number") {
    if (!(value > 0)) throw new RangeError(`duration ${value} must be positive`);
    return value;
  }
  const scale = { ms: 0.001, s: 1, m: 60, h: 3600 };
  const parts = [...String(value).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join("") !== String(value).replaceAll(" ", "")) {
    throw new RangeError(`duration ${JSON.stringify(value)} is not a number of seconds or like 90s, 2m, 1h30m`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * scale[p[2]], 0);
}

/** A connection to a running `vft daemon`. */
export class Client {
  /**
   * @param {{repo?: string, api?: string, token?: string, timeoutMs?: number}} [opts]
   *   In Node.js, api and token default to the repo's `api` and `api.token`
   *   files (repo: $VFT_PATH, else ~/.vft). In a browser page the daemon
   *   serves, api defaults to the page's origin and token to its #token=.
   */
  constructor(opts = {}) {
    let { api, token } = opts;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    const loc = globalThis.location;
    if (!builtin("node:fs") && loc) {
      api ??= loc.host;
      token ??= new URLSearchParams(loc.hash.slice(1)).get("token") ?? undefined;
      if (!token) throw new VFTError("no API token: pass {token} or open the page with #token=...");
    } else if (api === undefined || token === undefined) {
      const { fs, path } = nodeOnly("new Client() without api and token");
      this.repo = findRepo(opts.repo);
      const read = (name, missing) => {
        try {
          return fs.readFileSync(path.join(this.repo, name), "utf8").trim();
        } catch (e) {
          if (e.code === "ENOENT") throw new DaemonNotFound(missing);
          throw e;
        }
      };
      api ??= read("api", `no daemon is running for repo ${this.repo} (no ${this.repo}/api file): start one with \`vft daemon\`, or pass {repo} or {api}`);
      token ??= read("api.token", `no API token at ${this.repo}/api.token: run \`vft init\` or pass {token}`);
    }
    this.base = api.startsWith("http://") ? api : `http://${api}`;
    this.token = token;
  }

  async #fetch(method, path, body, { timeoutMs, signal } = {}) {
    const init = { method, headers: { Authorization: `Bearer ${this.token}` } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const signals = [signal, timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined].filter(Boolean);
    if (signals.length) init.signal = AbortSignal.any(signals);
    let resp;
    try {
      resp = await fetch(this.base + path, init);
    } catch (e) {
      if (e.name === "AbortError" || e.name === "TimeoutError") throw e;
      throw new DaemonNotFound(`no daemon answers at ${this.base} (${e.cause?.code ?? e.message}): is \`vft daemon\` running${this.repo ? ` for repo ${this.repo}` : ""}?`);
    }
    if (!resp.ok) {
      const text = await resp.text();
      let message = text.trim() || resp.statusText;
      try {
        message = JSON.parse(text).error ?? message;
      } catch {}
      throw new APIError(resp.status, message, method, path);
    }
    return resp;
  }

  /** One JSON call, e.g. `call("GET", "/api/v1/peers")`. */
  async call(method, path, body) {
    const resp = await this.#fetch(method, path, body, { timeoutMs: this.timeoutMs });
    return resp.json();
  }

  // A call answered with progress lines, then the result or an error line.
  async #stream(path, body, onProgress) {
    const resp = await this.#fetch("POST", path, body);
    for await (const line of lines(resp.body)) {
      if (!line.trim()) continue;
      const ev = JSON.parse(line);
      if (ev.error) throw new APIError(422, ev.error, "POST", path);
      if ("result" in ev) return ev.result;
      onProgress?.(ev.done ?? 0, ev.total ?? 0);
    }
    throw new VFTError(`POST ${path}: the daemon closed the connection before answering (did it stop?)`);
  }

  /** This node's identity: peer_id, wallet, mode, version, addrs. */
  id() { return this.call("GET", "/api/v1/id"); }
  /** Peer and node counts and clock skew. */
  health() { return this.call("GET", "/api/v1/health"); }
  /** Connected peers. */
  peers() { return this.call("GET", "/api/v1/peers"); }
  /** The live network table, with this node's reputation of each. */
  nodes() { return this.call("GET", "/api/v1/nodes"); }
  /** The wallet: address, balance (lamports), mint, token_balance. */
  wallet() { return this.call("GET", "/api/v1/wallet"); }
  /** What this node earned as a worker and paid as a submitter. */
  earnings(recent = 20) { return this.call("GET", `/api/v1/earnings?recent=${recent}`); }
  /** The API's OpenAPI 3.1 document. */
  openapi() { return this.call("GET", "/api/v1/openapi.json"); }
  /** Every job this node knows. */
  jobs() { return this.call("GET", "/api/v1/jobs"); }
  /** A handle on a job. */
  job(id) { return new Job(this, id); }

  /** Import a file or directory on this machine; resolves to its CID. */
  async add(path, { pin = true, hidden = false, onProgress } = {}) {
    const p = absolute(path);
    const res = await this.#stream("/api/v1/add", { path: p, no_pin: !pin, hidden }, onProgress);
    return res.cid;
  }

  /** Write a CID's content to a path on this machine. */
  get(cid, path, { onProgress } = {}) {
    return this.#stream("/api/v1/get", { cid, output: absolute(path) }, onProgress);
  }

  /**
   * Offer a job; resolves to its Job at once. Give exactly one of spec (a job
   * spec file, resolved by the daemon as `vft job submit` does), wasm (a
   * module file, added first, or a module CID) or image (an OCI image
   * layout's CID, run by the oci executor: its entrypoint, or command).
   * See README.md.
   */
  async submit(opts) {
    const { wasm, spec, image } = opts;
    if ([wasm, spec, image].filter((x) => x !== undefined).length !== 1) {
      throw new TypeError("give exactly one of wasm (a module file), spec (a job spec file) or image (a module CID)");
    }
    if (spec !== undefined) {
      const extra = Object.keys(opts).filter((k) => k !== "spec" && opts[k] !== undefined);
      if (extra.length) throw new TypeError(`spec takes its settings from the file; ${extra.join(", ")} must go into the spec file (or use wasm with these options)`);
      const res = await this.call("POST", "/api/v1/jobs/file", { path: absolute(spec) });
      return new Job(this, res.id);
    }
    const { command = [], inputs = [], args = [], env = {}, redundancy = 1, verify = "exact", quorum = 0, reward = 0,
      timeout = DEFAULT_TIMEOUT_S, memory = DEFAULT_MEMORY, seed = 0, mint = "", deadline = DEFAULT_DEADLINE_S } = opts;
    if (!(redundancy >= 1)) throw new RangeError(`redundancy ${redundancy}: at least 1 worker`);
    if (!["exact", "tolerance", "spot", "custom"].includes(verify)) throw new RangeError(`verify ${JSON.stringify(verify)}: use exact, tolerance, spot or custom`);
    let code;
    if (image !== undefined) {
      if (!CID.test(image)) throw new RangeError(`image ${JSON.stringify(image)} is not a CID: add the image first (\`vft image import\`)`);
      code = { Executor: "oci", Image: image, Command: command.map(String) };
    } else {
      if (command.length) throw new TypeError("command runs in an image: give image (an OCI image CID), not wasm");
      code = { Executor: "wasm", Module: await this.#module(wasm) };
    }
    const mounted = [];
    for (const input of inputs) mounted.push(await this.#input(input));
    const nonce = new Uint8Array(16);
    crypto.getRandomValues(nonce);
    const body = {
      ...code, Inputs: mounted, Args: args.map(String), Env: env, Seed: seed,
      Needs: { MemoryBytes: memory, TimeoutMS: Math.round(parseDuration(timeout) * 1000) },
      Verify: { Mode: verify, Workers: redundancy, Quorum: quorum || (verify === "spot" ? 0 : Math.floor(redundancy / 2) + 1) },
      Reward: reward, Mint: mint,
      Deadline: Math.round(Date.now() + parseDuration(deadline) * 1000),
      Nonce: btoa(String.fromCharCode(...nonce)),
    };
    const res = await this.call("POST", "/api/v1/jobs", body);
    return new Job(this, res.id);
  }

  // A module file (added first) or a module CID.
  async #module(wasm) {
    const src = String(wasm);
    const fs = builtin("node:fs");
    if (fs?.existsSync(src) && fs.statSync(src).isFile()) return this.add(src);
    if (CID.test(src)) return src;
    throw new RangeError(`wasm ${JSON.stringify(src)} is neither a module file nor a CID`);
  }

  // One input: a path (added, mounted rsync-style) or a CID.
  async #input(item) {
    let src = String(item);
    let mount;
    const colon = src.lastIndexOf(":");
    if (colon > 0 && colon < src.length - 1) [src, mount] = [src.slice(0, colon), src.slice(colon + 1)];
    const fs = builtin("node:fs");
    if (fs?.existsSync(src)) {
      const path = builtin("node:path");
      mount ??= src.endsWith("/") ? "" : path.basename(path.resolve(src));
      return { CID: await this.add(src), Path: mount };
    }
    if (CID.test(src)) return { CID: src, Path: mount ?? "" };
    throw new RangeError(`input ${JSON.stringify(String(item))} is neither an existing path nor a CID`);
  }

  /**
   * The live feed as an async iterator of {type, data} (types job, status,
   * log, resync). Stop it with `break` or an AbortSignal.
   */
  async *events({ signal } = {}) {
    yield* await this.openEvents({ signal });
  }

  /**
   * Like events(), but resolves once the daemon has subscribed this client
   * (it answers the headers after subscribing): what happens after that is
   * in the feed.
   */
  async openEvents({ signal } = {}) {
    const resp = await this.#fetch("GET", "/api/v1/events", undefined, { signal });
    return sse(resp.body);
  }
}

/** A job this node submitted (or works on). */
export class Job {
  constructor(client, id) {
    this.client = client;
    this.id = id;
    this.resultDir = undefined;
  }

  /** The job's full record. */
  record() { return this.client.call("GET", `/api/v1/jobs/${encodeURIComponent(this.id)}`); }

  /** The job's state: offered, assigned, running, verifying, settling, done, failed or cancelled. */
  async status() { return (await this.record()).state; }

  /** Withdraw the job. */
  async cancel(reason = "cancelled from the JavaScript SDK") {
    await this.client.call("POST", `/api/v1/jobs/${encodeURIComponent(this.id)}/cancel`, { reason });
  }

  /**
   * Wait until the job is done, failed or cancelled, following the live
   * feed. onStage(change, record) sees every stage as it happens; progress:
   * true prints them to stderr (or the console). Rejects with JobFailed
   * unless done (check: false resolves with the record anyway), and with a
   * TimeoutError after timeoutMs (the job goes on).
   */
  async wait({ timeoutMs, onStage, progress = false, check = true } = {}) {
    const show = onStage ?? (progress ? printChange : undefined);
    const abort = new AbortController();
    const timer = timeoutMs ? setTimeout(() => abort.abort(), timeoutMs) : undefined;
    let shown = 0;
    let rec;
    const follow = (r) => {
      rec = r;
      const history = r.history ?? [];
      for (const change of history.slice(shown)) show?.(change, r);
      shown = Math.max(shown, history.length);
      return TERMINAL.has(r.state);
    };
    try {
      for (;;) {
        // Subscribe first (the daemon subscribes before it answers the
        // headers), then read the record: no change is missed.
        const feed = await this.client.openEvents({ signal: abort.signal });
        let done = follow(await this.record());
        if (!done) {
          for await (const { type, data } of feed) {
            if (type === "job" && data?.id === this.id) done = follow(data);
            else if (type === "resync") done = follow(await this.record());
            if (done) break;
          }
        } else {
          await feed.return();
        }
        if (done) break;
      }
    } catch (e) {
      if (abort.signal.aborted) {
        const err = new VFTError(`job ${this.id} is still ${rec?.state} after ${timeoutMs} ms; it goes on: wait again or status()`);
        err.name = "TimeoutError";
        throw err;
      }
      throw e;
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
    if (check && rec.state !== "done") throw new JobFailed(rec);
    return rec;
  }

  /** Write the accepted result to path (a new file or directory); resolves to its absolute path. */
  async result(path) {
    const rec = await this.record();
    if (rec.state !== "done" || !rec.result) {
      if (TERMINAL.has(rec.state)) throw new JobFailed(rec);
      throw new VFTError(`job ${this.id} is ${rec.state}, not done: wait() first`);
    }
    const out = absolute(path);
    await this.client.get(rec.result, out);
    return out;
  }

  /** One file of the result as bytes (Node.js: fetched once into a temporary directory). */
  async readResult(name) {
    const { fs, path } = nodeOnly("readResult");
    if (!this.resultDir) {
      const os = builtin("node:os");
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vft-${this.id.slice(0, 12)}-`));
      this.resultDir = await this.result(path.join(dir, "result"));
    }
    const root = this.resultDir;
    const file = fs.statSync(root).isFile() ? root : path.join(root, name);
    if (!fs.existsSync(file)) {
      throw new VFTError(`job ${this.id}'s result has no ${JSON.stringify(name)}; it has ${JSON.stringify(fs.readdirSync(root))}`);
    }
    return new Uint8Array(fs.readFileSync(file));
  }

  /** One JSON file of the result, parsed. */
  async resultJson(name) {
    return JSON.parse(new TextDecoder().decode(await this.readResult(name)));
  }
}

function absolute(p) {
  const path = builtin("node:path");
  if (path) return path.resolve(String(p));
  if (!String(p).startsWith("/")) throw new RangeError(`path ${JSON.stringify(p)} must be absolute in a browser`);
  return String(p);
}

function printChange(change) {
  const at = String(change.at ?? "").slice(11, 19);
  const line = `  ${String(change.state).padEnd(10)} ${at}  ${change.note ?? ""}`.trimEnd();
  const stderr = globalThis.process?.stderr;
  if (stderr) stderr.write(line + "\n");
  else console.log(line);
}

// Lines of a response body stream.
async function* lines(body) {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i).replace(/\r$/, "");
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

// Server-Sent Events of a response body: {type, data} with data parsed.
async function* sse(body) {
  let type = "";
  let data = "";
  for await (const line of lines(body)) {
    if (line === "") {
      if (type && data) yield { type, data: JSON.parse(data) };
      type = "";
      data = "";
    } else if (line.startsWith("event: ")) type = line.slice(7);
    else if (line.startsWith("data: ")) data = line.slice(6);
  }
}
