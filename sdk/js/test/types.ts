// Compiled by `tsc --noEmit` (npm test): the declared types fit the way
// the README uses the package. Never run.
import { Client, JobFailed, type FeedEvent, type JobRecord } from "../src/index.js";

export async function usage(): Promise<void> {
  const client = new Client({ repo: "/tmp/repo" });
  const job = await client.submit({ spec: "examples/nninfer/job.toml" });
  const rec: JobRecord = await job.wait({ onStage: (c) => console.log(c.state, c.at) });
  console.log(rec.result, await job.status(), await job.result("./result"));
  const other = await client.submit({ wasm: "m.wasm", inputs: ["data/"], redundancy: 3, reward: 5000, timeout: "1m" });
  await other.cancel();
  for await (const ev of client.events()) {
    const e: FeedEvent = ev;
    if (e.type === "job") console.log(e.data.state);
    break;
  }
  const nodes = await client.nodes();
  console.log(nodes[0]?.reputation, (await client.wallet()).token_balance, await client.add("x"));
  try {
    await job.wait();
  } catch (e) {
    if (e instanceof JobFailed) console.log(e.record.reason);
  }
}
