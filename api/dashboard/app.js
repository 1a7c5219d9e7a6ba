// VFT dashboard: reads the local API and follows GET /api/v1/events.
// Plain JavaScript, no dependencies: everything is drawn from this file.
// Text from the node (job reasons, peer agents) is only ever set with
// textContent, never parsed as HTML.
"use strict";

const STAGES = ["offered", "assigned", "running", "verifying", "settling", "done"];
const TERMINAL = new Set(["done", "failed", "cancelled"]);
const HISTORY_POINTS = 150; // 5 minutes of 2-second status samples
const LOG_LINES = 200;

const state = {
  identity: null,
  jobs: new Map(), // id → job record
  gpuHistory: new Map(), // GPU key → {util: [], mem: [], temp: []}
  token: null,
  earnings: null, // GET /api/v1/earnings: totals per currency and recent jobs
  currencies: new Map(), // job id → {unit, decimals, mint}: how its amounts read
};

// ---- token: from the URL fragment (never sent to the server) to sessionStorage.
// Every call but the health check needs it: without it the page shows
// nothing but how to get it.

function loadToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("vft-token", decodeURIComponent(m[1]));
    // Keep the token out of the address bar, bookmarks and screen shares.
    history.replaceState(null, "", location.pathname + location.search);
  }
  state.token = sessionStorage.getItem("vft-token");
  document.getElementById("token-note").hidden = !!state.token;
}

// forgetToken drops a token the daemon refused (a new repo, a new token).
function forgetToken() {
  if (!state.token) return;
  sessionStorage.removeItem("vft-token");
  loadToken();
}

// ---- API helpers

async function api(path, opts = {}) {
  const headers = { Accept: "application/json" };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers.Authorization = "Bearer " + state.token;
  let resp;
  try {
    resp = await fetch(path, {
      method: opts.method || "GET",
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      cache: "no-store",
    });
  } catch (e) {
    return { status: 0, ok: false, data: null }; // the daemon is gone
  }
  let data = null;
  try { data = await resp.json(); } catch (e) { /* empty or non-JSON body */ }
  if (resp.status === 401) forgetToken();
  return { status: resp.status, ok: resp.ok, data };
}

// ---- small DOM helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function setText(id, text, cls) {
  const e = document.getElementById(id);
  e.textContent = text;
  if (cls !== undefined) e.className = e.className.replace(/\b(unavailable|error)\b/g, "").trim() + (cls ? " " + cls : "");
}

function fillTable(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...rows);
  const empty = document.querySelector('[data-empty-for="' + id + '"]');
  if (empty) empty.hidden = rows.length > 0;
}

function short(id) {
  if (!id) return "";
  return id.length > 16 ? id.slice(0, 8) + "…" + id.slice(-6) : id;
}

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

function sol(lamports) {
  return (lamports / 1e9).toLocaleString(undefined, { maximumFractionDigits: 9 }) + " SOL";
}

// amount writes a base-unit integer in its currency, exactly, as the CLI
// does: 5000 lamports is "0.000005 SOL", 12010000 of a 6-decimal token
// "12.01 Gh9Z…x3Qa". Without a currency it says base units.
function amount(n, cur) {
  if (!cur) return String(n) + " base units";
  const d = Number(cur.decimals) || 0;
  let digits = BigInt(Math.round(Number(n) || 0)).toString();
  if (d === 0) return digits + " " + cur.unit;
  if (digits.length <= d) digits = "0".repeat(d - digits.length + 1) + digits;
  const whole = digits.slice(0, digits.length - d);
  const frac = digits.slice(digits.length - d).replace(/0+$/, "");
  return (frac ? whole + "." + frac : whole) + " " + cur.unit;
}

function ago(iso) {
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!isFinite(s)) return "";
  if (s < 60) return Math.max(s, 0) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function clock(iso) {
  const d = iso ? new Date(iso) : new Date();
  return d.toLocaleTimeString();
}

// ---- identity, peers, network table

async function loadIdentity() {
  const r = await api("/api/v1/id");
  if (!r.ok) return;
  state.identity = r.data;
  setText("peer-id", r.data.peer_id);
  document.getElementById("peer-id").title = "wallet " + r.data.wallet;
  setText("mode", r.data.mode);
  setText("version", r.data.version);
  const light = r.data.mode === "light";
  document.body.classList.toggle("light", light);
  setText("submitted-title", light ? "Jobs submitted (this node pays)" : "Jobs submitted");
  setText("money-title", light ? "Paid out" : "Earned");
  renderJobs();
}

async function loadPeers() {
  const r = await api("/api/v1/peers");
  if (!r.ok) return;
  setText("peer-count", String(r.data.length));
  fillTable("peers-table", r.data.map((p) => el("tr", {},
    el("td", { class: "mono", text: short(p.id), title: p.id }),
    el("td", { class: "mono", text: p.addr }),
    el("td", { text: p.direction }),
    el("td", { text: p.latency_ms + " ms" }),
    el("td", { text: p.agent || "" }))));
}

// field reads a heartbeat field: /api/v1/nodes encodes heartbeats with
// their Go field names (the snake_case names are their CBOR wire form).
function field(obj, snake, goName) {
  if (!obj) return undefined;
  return obj[snake] !== undefined ? obj[snake] : obj[goName];
}

async function loadNodes() {
  const r = await api("/api/v1/nodes");
  if (!r.ok) return;
  setText("node-count", String(r.data.length));
  fillTable("nodes-table", r.data.map((e) => {
    const hb = e.heartbeat || {};
    const gpus = (field(hb, "gpus", "GPUs") || [])
      .map((g) => field(g, "name", "Name") + " (" + bytes(field(g, "free_memory_bytes", "FreeMemoryBytes")) + " free)")
      .join(", ") || "none";
    const mint = field(hb, "mint", "Mint");
    return el("tr", { "data-peer": e.peer_id },
      el("td", { class: "mono", text: short(e.peer_id) + (e.self ? " (this node)" : ""), title: e.peer_id }),
      el("td", { text: field(hb, "mode", "Mode") || "" }),
      el("td", { text: gpus }),
      el("td", { text: (field(hb, "cpu_cores", "CPUCores") || 0) + " cores" }),
      el("td", { text: bytes(field(hb, "free_memory_bytes", "FreeMemoryBytes")) }),
      el("td", { text: String(field(hb, "free_slots", "FreeSlots") ?? "") }),
      el("td", { text: String(field(hb, "price_floor", "PriceFloor") ?? 0) + (mint ? " (token " + short(mint) + ")" : " lamports") }),
      el("td", { text: ago(e.received_at), title: e.received_at }));
  }));
}

// ---- wallet and reputation: endpoints that may be missing or failing

async function loadWallet() {
  const r = await api("/api/v1/wallet");
  if (r.ok) {
    const w = r.data;
    setText("wallet-balance", sol(w.balance), "");
    document.getElementById("wallet-detail").title = "";
    setText("wallet-detail", w.address + (w.mint ? " · " + w.token_balance + " tokens of " + short(w.mint) : ""));
  } else if (r.status === 503) {
    setText("wallet-balance", "chain unreachable", "error");
    const why = (r.data && r.data.error) || "";
    setText("wallet-detail", why.length > 140 ? why.slice(0, 140) + "…" : why);
    document.getElementById("wallet-detail").title = why;
  } else {
    setText("wallet-balance", "not available", "unavailable");
    setText("wallet-detail", "this node has no wallet endpoint");
  }
}

async function loadReputation() {
  const r = await api("/api/v1/reputation");
  const empty = document.getElementById("reputation-empty");
  if (!r.ok || !Array.isArray(r.data)) {
    fillTable("reputation", []);
    empty.textContent = r.status === 404 ? "Reputation is not available on this node." : "Reputation could not be read.";
    return;
  }
  fillTable("reputation", r.data.map((p) => el("tr", {},
    el("td", { class: "mono", text: short(p.peer), title: p.peer }),
    el("td", { text: Number(p.score).toFixed(2) }),
    el("td", { text: Number(p.good).toFixed(2) }),
    el("td", { text: Number(p.bad).toFixed(2) }),
    el("td", { text: p.excluded ? "yes" : "no", class: p.excluded ? "error" : "" }))));
  empty.textContent = "No peers rated yet.";
}

// ---- jobs

async function loadJobs() {
  const r = await api("/api/v1/jobs");
  if (!r.ok) return;
  for (const rec of r.data) keepNewer(rec);
  renderJobs();
}

// keepNewer stores rec unless the copy already held was updated later: a
// job event that arrives while a list is on its way (a cancel, say) is
// newer than the list's copy, and must not be overwritten by it. A job is
// never removed, so the list only adds and updates.
function keepNewer(rec) {
  const cur = state.jobs.get(rec.id);
  if (cur && Date.parse(cur.updated_at) > Date.parse(rec.updated_at)) return;
  state.jobs.set(rec.id, rec);
}

// stageBar draws the stages a job went through. A job that failed or was
// cancelled ends where it stopped: the stages it never reached are drawn as
// unreached, not passed, and the last one it reached is marked as where it
// ended (a job cancelled while offered was never assigned or run).
function stageBar(rec) {
  const history = rec.history || [];
  const cur = rec.state;
  const stages = STAGES.slice(0, -1).concat([TERMINAL.has(cur) ? cur : "done"]);
  // Reaching a stage means every stage before it was passed, even one the
  // record has no entry for (a worker's record starts at assigned).
  const reachedIdx = Math.max(-1, ...history.map((h) => STAGES.indexOf(h.state)).filter((i) => i >= 0 && i < STAGES.length - 1));
  const stopped = cur === "failed" || cur === "cancelled";
  const lastPassed = stopped ? reachedIdx : stages.indexOf(cur) - 1;
  return el("div", { class: "stages", "data-stage": cur }, ...stages.map((s, i) => {
    let cls = "stage";
    if (s === cur) cls += " current" + (TERMINAL.has(s) ? " final-" + s : "");
    else if (i <= lastPassed) cls += " passed" + (stopped && i === lastPassed ? " ended" : "");
    else if (stopped) cls += " unreached";
    const when = history.filter((h) => h.state === s).pop();
    let title = when ? clock(when.at) + (when.note ? ": " + when.note : "") : "";
    if (stopped && i === lastPassed) title += (title ? "; " : "") + cur + " here";
    if (stopped && s !== cur && i > lastPassed) title = "not reached: the job was " + cur + " before this stage";
    return el("span", { class: cls, text: s, title });
  }));
}

function verdictCell(rec) {
  const v = rec.verdict;
  if (!v) return el("td", { class: "unavailable", text: TERMINAL.has(rec.state) ? "no verdict" : "–" });
  const parts = [];
  if (v.accepted) parts.push("accepted " + short(v.accepted));
  if (v.agreed) parts.push(v.agreed.length + " agreed");
  if (v.dissented && v.dissented.length) parts.push(v.dissented.length + " dissented");
  return el("td", { text: parts.join(", ") || "–", title: v.reason || "" });
}

function payoutsCell(rec) {
  if (!Array.isArray(rec.payouts)) return el("td", { class: "unavailable", text: "–" });
  const wallet = state.identity && state.identity.wallet;
  // A worker's cell says what it earned; a submitter's what it paid.
  const counted = rec.role === "worker" ? rec.payouts.filter((p) => p.recipient === wallet && !p.returned) : rec.payouts.filter((p) => !p.returned);
  const total = counted.reduce((a, p) => a + (p.amount || 0), 0);
  const states = [...new Set(rec.payouts.map((p) => p.state))].join("/");
  return el("td", { text: amount(total, state.currencies.get(rec.id)) + " (" + rec.payouts.length + ", " + states + ")" });
}

function cancelCell(rec) {
  if (rec.role !== "submitter" || TERMINAL.has(rec.state)) return el("td");
  const b = el("button", { class: "cancel", text: "cancel", type: "button", "data-job": rec.id });
  if (!state.token) {
    b.disabled = true;
    b.title = "Cancelling needs the API token: open the URL printed by `vft dashboard` (…/#token=…)";
  } else {
    b.addEventListener("click", () => cancelJob(rec.id, b));
  }
  return el("td", {}, b);
}

async function cancelJob(id, button) {
  button.disabled = true;
  const r = await api("/api/v1/jobs/" + encodeURIComponent(id) + "/cancel", {
    method: "POST", body: { reason: "cancelled from the dashboard" },
  });
  if (r.ok) {
    // The job event shows it too; this covers a feed that is reconnecting.
    const j = await api("/api/v1/jobs/" + encodeURIComponent(id));
    if (j.ok) {
      keepNewer(j.data);
      renderJobs();
    }
    return;
  }
  addLog({ level: "error", message: "cancel " + short(id) + ": " + ((r.data && r.data.error) || r.status), job: id });
  if (r.status === 401) {
    renderJobs();
  } else {
    button.disabled = false;
  }
}

function jobRow(rec) {
  // A job still short of workers says why (kept current by the node).
  const outcome = rec.result ? "result " + short(rec.result)
    : rec.reason || (rec.waiting ? "waiting: " + rec.waiting : "");
  const cells = [
    el("td", { class: "mono", text: short(rec.id), title: rec.id }),
    el("td", {}, stageBar(rec)),
  ];
  if (rec.role === "submitter") {
    cells.push(el("td", { class: "mono", text: (rec.workers || []).map(short).join(", ") }));
  }
  cells.push(el("td", { text: outcome, title: rec.result || rec.reason || rec.waiting || "" }), verdictCell(rec), payoutsCell(rec));
  if (rec.role === "submitter") cells.push(cancelCell(rec));
  return el("tr", { "data-job": rec.id, "data-state": rec.state }, ...cells);
}

function renderJobs() {
  const all = [...state.jobs.values()].sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at));
  fillTable("jobs-submitted", all.filter((r) => r.role === "submitter").map(jobRow));
  fillTable("jobs-worked", all.filter((r) => r.role === "worker").map(jobRow));
  renderPayouts(all);
}

// renderPayouts lists payouts in their currencies, and the card totals
// what this node earned (as a worker: the payments it found on chain for
// its done jobs) or paid (as a submitter), from GET /api/v1/earnings.
function renderPayouts(all) {
  const wallet = state.identity && state.identity.wallet;
  const rows = [];
  for (const rec of all) {
    if (!Array.isArray(rec.payouts)) continue;
    for (const p of rec.payouts) {
      const to = p.worker ? short(p.worker) + " · " + short(p.recipient) : short(p.recipient);
      rows.push(el("tr", {},
        el("td", { class: "mono", text: short(rec.id), title: rec.id }),
        el("td", { class: "mono", text: to + (p.recipient === wallet ? " (this node)" : ""), title: (p.worker ? "peer " + p.worker + ", " : "") + "wallet " + p.recipient }),
        el("td", { text: amount(p.amount || 0, state.currencies.get(rec.id)) + (p.returned ? " (back)" : "") }),
        el("td", { text: p.state || "", class: p.state === "failed" ? "error" : "" }),
        el("td", { class: "mono", text: short(p.signature), title: p.signature || "" })));
    }
  }
  fillTable("payouts", rows);
  renderMoney();
}

// renderMoney fills the Earned (miner) or Paid out (submitter) card.
function renderMoney() {
  const e = state.earnings;
  const light = state.identity && state.identity.mode === "light";
  const list = document.getElementById("money-jobs");
  list.replaceChildren();
  if (!e) {
    setText("money-total", "not available", "unavailable");
    setText("money-detail", "this node does not report earnings");
    return;
  }
  const totals = (light ? e.paid : e.earned) || [];
  if (totals.length === 0) {
    setText("money-total", "0", "");
    setText("money-detail", light ? "no job has paid out yet" : "no payment found on chain for this node's jobs yet");
    return;
  }
  setText("money-total", totals.map((t) => amount(t.amount, t.currency)).join(" + "), "");
  const jobs = totals.reduce((a, t) => a + t.jobs, 0);
  setText("money-detail", "over " + jobs + " job" + (jobs === 1 ? "" : "s"));
  for (const j of e.jobs || []) {
    const v = light ? j.paid : j.earned;
    if (!v) continue;
    list.append(el("li", { "data-job": j.job },
      el("span", { class: "mono", text: short(j.job), title: j.job }), " ",
      el("span", { text: amount(v, j.currency) })));
  }
}

let earningsTimer = null;

// loadEarnings reads the totals; job events with payouts ask again, at
// most twice a second.
async function loadEarnings() {
  const r = await api("/api/v1/earnings?recent=50");
  if (r.ok) {
    state.earnings = r.data;
    for (const j of r.data.jobs || []) state.currencies.set(j.job, j.currency);
  } else {
    state.earnings = null;
  }
  renderJobs();
}

function scheduleEarnings() {
  if (earningsTimer) return;
  earningsTimer = setTimeout(() => { earningsTimer = null; loadEarnings(); }, 500);
}

// ---- GPUs: live readings with small charts of the last minutes

function gpuKey(g) { return g.uuid || "gpu" + g.index; }

function pushSample(arr, v) {
  arr.push(v);
  if (arr.length > HISTORY_POINTS) arr.shift();
}

function drawChart(canvas, samples, maxValue, color) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (!samples.length || !(maxValue > 0)) return;
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  samples.forEach((v, i) => {
    const x = w - (samples.length - 1 - i) * (w / (HISTORY_POINTS - 1));
    const y = h - 2 - (Math.min(v, maxValue) / maxValue) * (h - 4);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function renderGPUs(gpus) {
  const box = document.getElementById("gpus");
  if (!gpus || !gpus.length) {
    box.replaceChildren(el("p", { class: "empty", text: "No usable GPU on this node: it runs WASM and CPU jobs only (see `vft hw`)." }));
    return;
  }
  const cards = gpus.map((g) => {
    const key = gpuKey(g);
    let h = state.gpuHistory.get(key);
    if (!h) { h = { util: [], mem: [], temp: [] }; state.gpuHistory.set(key, h); }
    const na = g.unavailable || {};
    pushSample(h.util, g.utilization_percent);
    pushSample(h.mem, g.memory_used_bytes);
    pushSample(h.temp, g.temperature_c);
    const metric = (label, value, unknown, samples, max, color) => {
      const canvas = el("canvas", { width: 160, height: 36 });
      drawChart(canvas, unknown ? [] : samples, max, color);
      return el("div", { class: "metric" },
        el("span", { text: label }),
        el("strong", { text: unknown ? "unknown" : value, class: unknown ? "unavailable" : "" }),
        canvas);
    };
    return el("div", { class: "gpu", "data-gpu": key },
      el("h3", { text: "#" + g.index + " " + g.name }),
      metric("utilisation", g.utilization_percent + " %", na.utilization, h.util, 100, "#2563eb"),
      metric("memory", bytes(g.memory_used_bytes) + " / " + bytes(g.memory_total_bytes), na.memory, h.mem, g.memory_total_bytes, "#7c3aed"),
      metric("temperature", g.temperature_c + " °C", na.temperature, h.temp, 100, "#dc2626"));
  });
  box.replaceChildren(...cards);
}

// ---- log

function addLog(line) {
  const list = document.getElementById("log");
  const li = el("li", { class: line.level || "info" },
    el("time", { text: clock(line.time) }),
    el("span", { text: line.message }));
  list.prepend(li);
  while (list.children.length > LOG_LINES) list.lastChild.remove();
}

// ---- live feed

let lastRefresh = 0;

function onStatus(s) {
  setText("peer-count", String(s.peers));
  setText("node-count", String(s.nodes));
  setText("free-slots", s.max_jobs ? s.free_slots + " / " + s.max_jobs : String(s.free_slots));
  renderGPUs(s.gpus);
  // The tables change slowly: refresh them every few status ticks.
  if (Date.now() - lastRefresh > 5000) {
    lastRefresh = Date.now();
    loadPeers();
    loadNodes();
  }
}

function setOnline(online) {
  document.getElementById("offline").hidden = online;
  setText("conn", online ? "live" : "offline");
  document.getElementById("conn").className = "conn " + (online ? "live" : "offline");
}

let source = null;
let reconnect = null;

// connect opens the live feed. EventSource cannot send the token in a
// header, so the page first buys a one-time ticket with it (good for one
// connection, for seconds) and puts that in the feed's URL.
async function connect() {
  if (source) { source.close(); source = null; }
  clearTimeout(reconnect);
  if (!state.token) {
    // Not offline: locked. A token in the fragment (hashchange) connects.
    document.getElementById("offline").hidden = true;
    setText("conn", "needs token");
    document.getElementById("conn").className = "conn offline";
    return;
  }
  const t = await api("/api/v1/events/ticket", { method: "POST" });
  if (!t.ok) {
    setOnline(false);
    if (state.token) reconnect = setTimeout(connect, 3000); // the daemon is away
    else connect(); // the token was refused: say so
    return;
  }
  const es = new EventSource("/api/v1/events?ticket=" + encodeURIComponent(t.data.ticket));
  source = es;
  es.addEventListener("open", () => {
    setOnline(true);
    refreshAll(); // after a daemon restart everything may have changed
  });
  es.addEventListener("error", () => {
    if (source !== es) return;
    setOnline(false);
    // The ticket is spent: the browser's own retry would be refused, so
    // start over with a new ticket after a pause.
    es.close();
    source = null;
    reconnect = setTimeout(connect, 2000);
  });
  const on = (type, fn) => es.addEventListener(type, fn);
  on("status", (e) => onStatus(JSON.parse(e.data)));
  on("log", (e) => addLog(JSON.parse(e.data)));
  on("job", (e) => {
    const rec = JSON.parse(e.data);
    keepNewer(rec);
    renderJobs();
    if (Array.isArray(rec.payouts)) scheduleEarnings();
  });
  on("resync", () => {
    addLog({ level: "warn", message: "the live feed fell behind; reloading the state" });
    refreshAll();
  });
}

function refreshAll() {
  if (!state.token) return; // every read needs it
  loadIdentity();
  loadPeers();
  loadNodes();
  loadJobs();
  loadWallet();
  loadEarnings();
  loadReputation();
}

// A token pasted into an open tab's address bar counts too.
window.addEventListener("hashchange", () => {
  const had = state.token;
  loadToken();
  if (state.token && state.token !== had) {
    refreshAll();
    connect();
  }
  renderJobs();
});

loadToken();
refreshAll();
connect();
setInterval(loadWallet, 30000);
setInterval(loadReputation, 10000);
