// The JavaScript SDK against a real devnet: submit the examples, follow
// their stages from the live feed, read their results.
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { APIError, Client, DaemonNotFound, JobFailed, parseDuration } from "../src/index.js";
import { ROOT, startDevnet } from "./devnet.mjs";

let net;
let client;
let tmp;

before(async () => {
  net = await startDevnet(3);
  client = new Client({ repo: net.submitter.repo });
  tmp = mkdtempSync(join(tmpdir(), "vft-sdk-js-test-"));
});

after(async () => {
  await net?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("client", () => {
  test("finds the daemon like the CLI ($VFT_PATH)", async () => {
    const old = process.env.VFT_PATH;
    process.env.VFT_PATH = net.submitter.repo;
    try {
      const c = new Client();
      assert.equal(c.base, `http://${net.submitter.api}`);
      assert.equal((await c.id()).peer_id, net.submitter.peer_id);
    } finally {
      if (old === undefined) delete process.env.VFT_PATH;
      else process.env.VFT_PATH = old;
    }
  });

  test("no daemon for a repo", () => {
    assert.throws(() => new Client({ repo: tmp }), (e) => e instanceof DaemonNotFound && /vft daemon/.test(e.message));
  });

  test("errors carry the API's message", async () => {
    const c = new Client({ repo: net.submitter.repo, token: "0".repeat(64) });
    await assert.rejects(c.nodes(), (e) => e instanceof APIError && e.status === 401 && /api\.token/.test(e.apiMessage));
    await assert.rejects(client.job("nope").record(), (e) => e instanceof APIError && e.status === 422 && /no such job/.test(e.apiMessage));
  });

  test("nodes, wallet, openapi", async () => {
    assert.ok((await client.nodes()).filter((n) => !n.self).length >= 3);
    assert.equal((await client.wallet()).mint, net.info.mint);
    assert.equal((await client.openapi()).openapi, "3.1.0");
  });

  test("add and get", async () => {
    const src = join(tmp, "in");
    mkdirSync(src);
    writeFileSync(join(src, "a.txt"), "hello");
    const cid = await client.add(src);
    const res = await client.get(cid, join(tmp, "out"));
    assert.equal(res.cid, cid);
    assert.equal(readFileSync(join(tmp, "out", "a.txt"), "utf8"), "hello");
  });

  test("submit a spec file, watch its stages, read the result", async () => {
    const job = await client.submit({ spec: join(ROOT, "examples", "wordcount", "job.toml") });
    const stages = [];
    const rec = await job.wait({ timeoutMs: 240_000, onStage: (c) => stages.push(c.state) });
    assert.equal(rec.state, "done");
    assert.equal(await job.status(), "done");
    assert.equal(stages[0], "offered");
    assert.equal(stages.at(-1), "done");
    assert.ok(stages.includes("verifying"), stages.join(" "));
    const out = await job.result(join(tmp, "wordcount"));
    assert.equal(readFileSync(join(out, "counts.tsv"), "utf8"),
      readFileSync(join(ROOT, "examples", "wordcount", "expected", "texts", "counts.tsv"), "utf8"));
  });

  test("submit the nninfer module with inputs", async () => {
    const job = await client.submit({
      wasm: join(ROOT, "bin", "examples", "nninfer.wasm"),
      inputs: [join(ROOT, "examples", "nninfer", "testdata") + "/"],
      redundancy: 3, reward: 5000, timeout: "1m", memory: 256 << 20, seed: 42,
    });
    await job.wait({ timeoutMs: 240_000 });
    const want = JSON.parse(readFileSync(join(ROOT, "examples", "nninfer", "expected", "blobs", "predictions.json"), "utf8"));
    assert.deepEqual(await job.resultJson("predictions.json"), want);
  });

  test("cancel", async () => {
    // Cancelled at once, long before its workers (compiling the module
    // alone takes seconds) could finish it.
    const job = await client.submit({ wasm: join(ROOT, "bin", "examples", "wordcount.wasm"), redundancy: 3, reward: 5000 });
    await job.cancel("test");
    await assert.rejects(job.wait({ timeoutMs: 60_000 }), (e) => e instanceof JobFailed && e.record.state === "cancelled");
  });

  test("the live feed as an async iterator", async () => {
    const ctl = new AbortController();
    const seen = [];
    for await (const ev of client.events({ signal: ctl.signal })) {
      seen.push(ev.type);
      if (ev.type === "status") break;
    }
    assert.ok(seen.includes("status"), seen.join(" "));
  });

  // A browser page the daemon serves has fetch but no Node built-ins: the
  // client takes the page's origin and #token=, and touches no file.
  test("works without Node built-ins, as in a browser page", async () => {
    const token = readFileSync(join(net.submitter.repo, "api.token"), "utf8").trim();
    const script = `
      globalThis.location = { host: ${JSON.stringify(net.submitter.api)}, hash: "#token=${token}" };
      globalThis.process = undefined;
      const { Client } = await import(${JSON.stringify(new URL("../src/index.js", import.meta.url).href)});
      const c = new Client();
      const nodes = await c.nodes();
      const job = await c.submit({ wasm: "bafkqaaa", redundancy: 1, reward: 5000 }).catch((e) => e);
      console.log(JSON.stringify({ base: c.base, nodes: nodes.length, job: job instanceof Error ? job.name + ": " + job.message : "submitted" }));
    `;
    const { execFileSync } = await import("node:child_process");
    const out = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }).trim().split("\n").at(-1));
    assert.equal(out.base, `http://${net.submitter.api}`);
    assert.ok(out.nodes >= 3);
    // The daemon answers (a job, or its refusal of this empty module):
    // building the spec needed nothing from Node.
    assert.match(out.job, /^(submitted|APIError)/);
  });

  test("bad input is named", async () => {
    await assert.rejects(client.submit({ wasm: "bafkqaaa", inputs: ["no-such-thing"] }), /no-such-thing/);
    await assert.rejects(client.submit({ wasm: "no-such-module.wasm" }), /no-such-module\.wasm/);
    await assert.rejects(client.submit({ image: "busybox:latest" }), /busybox:latest.*not a CID/);
    await assert.rejects(client.submit({ spec: join(ROOT, "examples", "wordcount", "job.toml"), reward: 1 }), /reward/);
  });
});

test("parseDuration", () => {
  assert.equal(parseDuration(90), 90);
  assert.equal(parseDuration("2m"), 120);
  assert.equal(parseDuration("1h30m"), 5400);
  assert.equal(parseDuration("500ms"), 0.5);
  assert.throws(() => parseDuration("2 weeks"), RangeError);
});
