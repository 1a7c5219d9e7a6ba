// A real local VFT network for the tests: `vft devnet` (a Solana localnet,
// miners and a submitter, as separate processes on loopback).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, openSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Client } from "../src/index.js";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const VFT = process.env.VFT_BIN ?? join(ROOT, "bin", "vft");

/** Starts `vft devnet --miners N`; stop() sends SIGINT, as Ctrl-C. */
export async function startDevnet(miners = 3) {
  for (const need of [VFT, join(ROOT, "bin", "examples", "nninfer.wasm")]) {
    if (!existsSync(need)) throw new Error(`${need} is missing: run \`make build examples localnet-deps\` first`);
  }
  const tmp = mkdtempSync(join(tmpdir(), "vft-sdk-js-"));
  const dir = join(tmp, "net");
  const logPath = join(tmp, "devnet.log");
  const log = openSync(logPath, "w");
  const proc = spawn(VFT, ["devnet", "--miners", String(miners), "--dir", dir], { cwd: ROOT, stdio: ["ignore", "pipe", log] });
  const exited = new Promise((res) => proc.on("exit", res));
  const ready = await Promise.race([
    (async () => {
      for await (const line of createInterface({ input: proc.stdout })) if (line.startsWith("devnet ready")) return true;
      return false;
    })(),
    new Promise((res) => setTimeout(() => res(false), 240_000).unref()),
  ]);
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGINT");
      const killer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
      await exited;
      clearTimeout(killer);
    }
    closeSync(log);
    rmSync(tmp, { recursive: true, force: true });
  };
  if (!ready) {
    const logs = readFileSync(logPath, "utf8").slice(-4000);
    await stop();
    throw new Error(`vft devnet was not ready:\n${logs}`);
  }
  proc.stdout.resume();
  const info = JSON.parse(readFileSync(join(dir, "devnet.json"), "utf8"));
  const submitter = info.nodes.find((n) => n.name === "submitter");
  const client = new Client({ repo: submitter.repo });
  const deadline = Date.now() + 120_000;
  while ((await client.nodes()).filter((n) => !n.self).length < miners && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
  }
  return { info, submitter, stop };
}
