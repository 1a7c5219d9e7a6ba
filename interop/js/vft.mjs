// The VFT wire rules, written from docs/PROTOCOL.md alone (no Go code):
// envelopes, deterministic CBOR, signatures, freshness, every body's keys
// and types, job IDs, commitments, and the kinds' own rules.
import { createHash, createPublicKey, verify as edVerify } from 'node:crypto'
import { decode, encode } from 'cborg'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const enc = new TextEncoder()

// PROTOCOL.md, Message reference, Limits.
export const MIN = 60_000
export const HOUR = 60 * MIN
export const LIMITS = {
  'heartbeat/2': { size: 16384, age: 2 * MIN, future: 30_000 },
  'job-offer/1': { size: 65536, age: 169 * HOUR, future: 30_000 },
  'job-cancel/1': { size: 4096, age: 2 * MIN, future: 30_000 },
  'job-verdict/1': { size: 90112, age: HOUR, future: 30_000 },
  'job-bid/1': { size: 69632, age: MIN, future: 30_000 },
  'job-ack/1': { size: 69632, age: MIN, future: 30_000 },
  'job-invite/1': { size: 69632, age: MIN, future: 30_000 },
  'job-assign/1': { size: 69632, age: MIN, future: 30_000 },
  'job-started/1': { size: 69632, age: MIN, future: 30_000 },
  'job-progress/1': { size: 69632, age: MIN, future: 30_000 },
  'job-commit/1': { size: 69632, age: MIN, future: 30_000 },
  'job-reveal-request/1': { size: 69632, age: MIN, future: 30_000 },
  'job-reveal/1': { size: 69632, age: MIN, future: 30_000 },
  'escrow-sign/1': { size: 8192, age: MIN, future: 30_000 },
  'escrow-signature/1': { size: 2048, age: MIN, future: 30_000 }
}
export const REVEAL_IN_VERDICT = { size: 1024, age: 24 * HOUR, future: 30_000 }
export const OFFER_IN_VERDICT = { size: 65536, age: 338 * HOUR, future: 30_000 }

// Body schemas: key → [type, 'required' | 'optional'], from the tables.
// Types: text, uint, int, bool, bytes, cid (text), peer (text peer ID),
// [t] list (or null), {text:text} map (or null), or a nested schema.
const GPU = { name: 'text', memory_bytes: 'uint', free_memory_bytes: 'uint', cc: 'text', util: 'uint' }
const INPUT = { cid: 'cid', path: 'text' }
const NEEDS = { cpu: 'uint', memory: 'uint', gpus: 'uint', gpu_memory: 'uint', gpu_model: 'text', timeout_ms: 'uint', max_output: 'uint' }
const VERIFY = { mode: 'text', k: 'uint', m: 'uint', spot_permille: 'uint?', rel_tol_ppb: 'uint?', abs_tol_ppb: 'uint?', verifier: 'cid?' }
const PAYOUT = { recipient: 'bytes', amount: 'uint' }
export const SCHEMAS = {
  'heartbeat/2': {
    mode: 'text', version: 'text', uptime_s: 'uint', interval_s: 'uint', network_size: 'uint', executors: ['text'],
    price_floor: 'uint', mint: 'text', free_slots: 'uint', cpu_cores: 'uint', memory_bytes: 'uint', free_memory_bytes: 'uint', gpus: [GPU],
    addrs: ['text', '?'], reachability: 'text?', oci_runtime: 'text?', gpu_access: 'text?'
  },
  'job-offer/1': {
    executor: 'text', module: 'cid?', command: ['text', '?'], inputs: [INPUT], args: ['text'], env: 'map', seed: 'uint',
    needs: NEEDS, verify: VERIFY, reward: 'uint', mint: 'text', escrow: 'bool?', deadline: 'int', nonce: 'bytes', floats: 'text?'
  },
  'job-cancel/1': { job: 'cid', reason: 'text' },
  'job-bid/1': { job: 'cid', price: 'uint', free_slots: 'uint' },
  'job-ack/1': { job: 'cid', ok: 'bool', reason: 'text' },
  'job-invite/1': { offer: 'bytes' },
  'job-assign/1': { job: 'cid', offer: 'bytes', workers: ['peer'] },
  'job-started/1': { job: 'cid' },
  'job-progress/1': { job: 'cid', stage: 'text', staged_bytes: 'uint' },
  'job-commit/1': { job: 'cid', commitment: 'bytes|null', error: 'text', failure: 'text' },
  'job-reveal-request/1': { job: 'cid' },
  'job-reveal/1': { job: 'cid', result: 'cid', salt: 'bytes' },
  'job-verdict/1': { job: 'cid', offer: 'bytes', accepted: 'text', agreed: ['peer'], dissented: ['peer'], reveals: ['bytes'], reasons: 'map' },
  'escrow-sign/1': { job: 'cid', kind: 'text', tx: 'bytes', result: 'cid?', payouts: [PAYOUT] },
  'escrow-signature/1': { job: 'cid', sig: 'bytes?', refusal: 'text?' }
}

export class Invalid extends Error {}
const fail = (msg) => { throw new Invalid(msg) }

const isZero = (v) => v === false || v === 0 || v === 0n || v === '' || v === null ||
  (v instanceof Uint8Array && v.length === 0) || (Array.isArray(v) && v.length === 0)

function checkType (path, t, v) {
  if (Array.isArray(t)) {
    if (v === null) return
    if (!Array.isArray(v)) fail(`${path} is not a list`)
    v.forEach((x, i) => checkType(`${path}[${i}]`, t[0], x))
    return
  }
  if (typeof t === 'object') return checkBody(path, t, v)
  const base = t.replace('?', '')
  switch (base) {
    case 'text': if (typeof v !== 'string') fail(`${path} is not text`); return
    case 'cid':
      if (typeof v !== 'string') fail(`${path} is not a CID as text (tag-42 links are not used)`)
      if (v !== '') { try { CID.parse(v) } catch { fail(`${path} ${JSON.stringify(v)} is not a CID`) } }
      return
    case 'peer':
      if (typeof v !== 'string') fail(`${path} is not a text peer ID`)
      parsePeerText(v)
      return
    case 'uint': if (!(typeof v === 'number' || typeof v === 'bigint') || v < 0) fail(`${path} is not an unsigned integer`); return
    case 'int': if (!(typeof v === 'number' || typeof v === 'bigint')) fail(`${path} is not an integer`); return
    case 'bool': if (typeof v !== 'boolean') fail(`${path} is not a bool`); return
    case 'bytes': if (!(v instanceof Uint8Array)) fail(`${path} is not a byte string`); return
    case 'bytes|null': if (v !== null && !(v instanceof Uint8Array)) fail(`${path} is not bytes or null`); return
    case 'map':
      if (v === null) return
      if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) fail(`${path} is not a map`)
      for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') fail(`${path}.${k} is not text`)
      return
  }
  throw new Error(`schema type ${t}`)
}

// checkBody: every key not marked optional is present; optional keys are
// absent when zero; no unknown keys (PROTOCOL.md, encoding rules).
export function checkBody (path, schema, body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body) || body instanceof Uint8Array) fail(`${path} is not a map`)
  for (const [k, t] of Object.entries(schema)) {
    const optional = (typeof t === 'string' && t.endsWith('?')) || (Array.isArray(t) && t[1] === '?')
    if (!(k in body)) {
      if (!optional) fail(`${path}: required key ${k} is missing`)
      continue
    }
    if (optional && isZero(body[k])) fail(`${path}: optional key ${k} must be left out when zero`)
    checkType(`${path}.${k}`, t, body[k])
  }
  for (const k of Object.keys(body)) if (!(k in schema)) fail(`${path}: unknown key ${k}`)
}

// Deterministic CBOR: decode strictly, re-encode (cborg's default order is
// length-first, DAG-CBOR's), and demand the same bytes.
export function decodeCanonical (bytes) {
  let v
  try {
    v = decode(bytes, { strict: true, rejectDuplicateMapKeys: true, allowIndefinite: false, allowUndefined: false, allowInfinity: false, allowNaN: false })
  } catch (e) { fail(`malformed CBOR: ${e.message}`) }
  const again = encode(v)
  if (Buffer.compare(Buffer.from(again), Buffer.from(bytes)) !== 0) fail('not in deterministic CBOR form')
  return v
}

// A binary peer ID: identity multihash of the ed25519 public key protobuf.
const ED_PREFIX = Uint8Array.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
export function peerPublicKey (bin) {
  if (!(bin instanceof Uint8Array) || bin.length !== 38 || !ED_PREFIX.every((b, i) => bin[i] === b)) fail('signer is not an ed25519 peer ID')
  return bin.subarray(6)
}
export const peerText = (bin) => base58btc.baseEncode(bin)
export function parsePeerText (s) {
  let bin
  try { bin = base58btc.baseDecode(s) } catch { fail(`${JSON.stringify(s)} is not a peer ID`) }
  peerPublicKey(bin)
  return bin
}

const SPKI = Buffer.from('302a300506032b6570032100', 'hex')
function edOK (pub, msg, sig) {
  const key = createPublicKey({ key: Buffer.concat([SPKI, Buffer.from(pub)]), format: 'der', type: 'spki' })
  return edVerify(null, Buffer.from(msg), key, Buffer.from(sig))
}

export function signingBytes (kind, signer, time, body) {
  const head = enc.encode(`vft/1/sig\x00${kind}\x00`)
  const signed = encode({ kind, signer, time, body })
  const out = new Uint8Array(head.length + signed.length)
  out.set(head); out.set(signed, head.length)
  return out
}

// open checks an envelope as PROTOCOL.md says, cheapest first: size,
// strict decoding, kind, signature, freshness, then the body's keys.
export function open (bytes, kind, nowMS, lim = LIMITS[kind]) {
  if (bytes.length > lim.size) fail(`message too large: ${bytes.length} bytes, limit ${lim.size}`)
  const env = decodeCanonical(bytes)
  // The envelope: exactly kind, signer, time, body, sig (body's own keys
  // are the kind's, checked below; here only that it is there).
  checkBody('envelope', { kind: 'text', signer: 'bytes', time: 'int', sig: 'bytes', body: 'map' }, { ...env, body: null })
  if (env.kind !== kind) fail(`unexpected message kind ${JSON.stringify(env.kind)}, want ${kind}`)
  const pub = peerPublicKey(env.signer)
  if (typeof env.body !== 'object' || env.body === null || Array.isArray(env.body) || env.body instanceof Uint8Array) fail('body is not an embedded map')
  if (env.sig.length !== 64 || !edOK(pub, signingBytes(env.kind, env.signer, env.time, env.body), env.sig)) fail('bad signature')
  const time = Number(env.time)
  if (nowMS - time > lim.age) fail(`message too old: ${nowMS - time} ms, limit ${lim.age}`)
  if (time - nowMS > lim.future) fail(`message from the future: ${time - nowMS} ms ahead, limit ${lim.future}`)
  checkBody(kind, SCHEMAS[kind], env.body)
  return { kind, signer: env.signer, signerText: peerText(env.signer), time, body: env.body }
}

export const kindOf = (bytes) => {
  const v = decode(bytes, { strict: true, rejectDuplicateMapKeys: true, allowIndefinite: false })
  return typeof v?.kind === 'string' ? v.kind : fail('no kind')
}

export async function jobID (offerBytes) {
  return CID.create(1, 0x71, await sha256.digest(offerBytes)).toString()
}

// commitment = SHA-256 of length-prefixed (4-byte big-endian) parts.
export function commitment (resultCID, workerBin, salt) {
  const h = createHash('sha256')
  for (const part of [enc.encode('vft/commit/1'), enc.encode(resultCID), workerBin, salt]) {
    const n = Buffer.alloc(4); n.writeUInt32BE(part.length)
    h.update(n); h.update(part)
  }
  return new Uint8Array(h.digest())
}

// The kinds' own rules beyond the envelope and the body's keys.
export async function checkRules (msg, nowMS) {
  const b = msg.body
  switch (msg.kind) {
    case 'heartbeat/2':
      if (b.interval_s < 5 || b.interval_s > 1800) fail(`interval_s ${b.interval_s} outside 5..1800 (heartbeat interval outside 5s..30m)`)
      if ((b.addrs ?? []).length > 8) fail(`${b.addrs.length} addrs, at most 8`)
      for (const a of b.addrs ?? []) if (enc.encode(a).length > 256 || !a.startsWith('/')) fail(`heartbeat address ${a} is not a multiaddr of at most 256 B`)
      if (b.reachability !== undefined && !['public', 'private'].includes(b.reachability)) fail(`heartbeat reachability ${b.reachability}`)
      if (b.gpu_access !== undefined && !['cdi', 'nvml'].includes(b.gpu_access)) fail(`heartbeat gpu_access ${b.gpu_access} is neither cdi nor nvml`)
      if (b.oci_runtime !== undefined && !/^[a-z0-9._-]{1,32}$/.test(b.oci_runtime)) fail(`heartbeat oci_runtime ${b.oci_runtime} is not a program name`)
      return
    case 'job-progress/1':
      if (!['staging', 'running'].includes(b.stage)) fail(`job-progress stage ${b.stage} is neither staging nor running`)
      return
    case 'job-offer/1': return checkSpec(b, nowMS)
    case 'job-verdict/1': return checkVerdict(msg, nowMS)
  }
}

function checkSpec (s, nowMS) {
  if (s.executor === 'wasm') {
    if (!s.module) fail('a wasm job needs a module')
    if (s.command) fail('command is set for a wasm job')
    if (s.needs.gpus > 0) fail('needs.gpus for a wasm job')
    if (s.floats !== undefined && !['portable', 'native'].includes(s.floats)) fail(`floats ${JSON.stringify(s.floats)} is neither portable nor native`)
  } else if (s.executor === 'native') {
    if (!s.command || !s.command[0]) fail('command is empty')
    if (s.module) fail('module is set for a native job')
    if (s.floats !== undefined) fail('floats is set for a native job')
  } else fail(`executor ${JSON.stringify(s.executor)} is not one of wasm, native`)
  if ((s.inputs ?? []).length > 256 || (s.args ?? []).length > 256 || Object.keys(s.env ?? {}).length > 64) fail('too many inputs, args or env')
  const t = Number(s.needs.timeout_ms)
  if (t <= 0 || t > 24 * HOUR) fail(`needs.timeout ${t} ms outside (0, 24h]`)
  const v = s.verify
  if (v.k < 1 || v.k > 16) fail(`verify.k = ${v.k} is outside 1..16`)
  if (['exact', 'tolerance', 'custom'].includes(v.mode)) {
    if (v.m <= Math.floor(v.k / 2) || v.m > v.k) fail(`verify.m = ${v.m} with k = ${v.k}: need a majority`)
    if (v.mode === 'tolerance' && !v.rel_tol_ppb && !v.abs_tol_ppb) fail('tolerance needs rel_tol or abs_tol')
    if (v.mode === 'custom' && !v.verifier) fail('custom needs a verifier')
  } else if (v.mode === 'spot') {
    if (v.k !== 1) fail('spot runs one worker')
    if (!v.spot_permille || v.spot_permille > 1000) fail('spot_permille outside 1..1000')
  } else fail(`verify mode ${JSON.stringify(v.mode)}`)
  if (s.escrow && (!s.mint || v.mode === 'spot' || v.k > 10 || !s.reward)) fail('escrow needs a mint, a reward, k ≤ 10, not spot')
  if (s.nonce.length < 8 || s.nonce.length > 32) fail(`nonce has ${s.nonce.length} bytes, want 8..32`)
  const dl = Number(s.deadline)
  if (dl <= nowMS) fail('deadline has passed')
  if (dl - nowMS > 7 * 24 * HOUR) fail('deadline is more than 7 days away')
}

async function checkVerdict (msg, nowMS) {
  const v = msg.body
  if (await jobID(v.offer) !== v.job) fail('verdict names a job whose offer it does not carry')
  const offer = open(v.offer, 'job-offer/1', nowMS, OFFER_IN_VERDICT)
  if (offer.signerText !== msg.signerText) fail('verdict not signed by the offer\'s submitter')
  const pol = offer.body.verify
  const named = new Set()
  for (const p of [...(v.agreed ?? []), ...(v.dissented ?? [])]) {
    if (named.has(p) || p === msg.signerText) fail('verdict names a worker twice or its author')
    named.add(p)
  }
  const maxReveals = pol.k + (offer.body.escrow ? 0 : 2)
  if ((v.reveals ?? []).length > maxReveals) fail('more reveals than the job has workers')
  const revealed = new Map()
  for (const r of v.reveals ?? []) {
    const rm = open(r, 'job-reveal/1', nowMS, REVEAL_IN_VERDICT)
    if (rm.body.job !== v.job) fail('a reveal about another job')
    if (revealed.has(rm.signerText)) fail('two reveals by one worker')
    if (v.accepted !== '' && !named.has(rm.signerText)) fail('a reveal by a worker the verdict does not name')
    revealed.set(rm.signerText, rm.body.result)
  }
  const byCID = pol.mode === 'exact' || pol.mode === 'spot'
  if (v.accepted !== '') {
    if (byCID) {
      for (const a of v.agreed ?? []) if (revealed.get(a) !== v.accepted) fail(`agreed worker ${a} did not reveal the accepted result`)
      for (const d of v.dissented ?? []) if (revealed.get(d) === v.accepted) fail(`dissenter ${d} revealed the accepted result`)
    }
    const m = pol.mode === 'spot' ? 1 : pol.m
    if ((v.agreed ?? []).length < m) fail('fewer agreeing workers than the quorum')
  } else if (byCID) {
    const counts = new Map()
    for (const r of revealed.values()) counts.set(r, (counts.get(r) ?? 0) + 1)
    if ([...counts.values()].some((c) => c >= pol.m)) fail('a rejection whose reveals reach the quorum')
    for (const d of v.dissented ?? []) if (revealed.has(d)) fail('a rejection naming as dissenter a worker with a revealed result')
  }
}

// seal signs body as kind with an ed25519 signer (sign: bytes → sig).
export async function seal (kind, signerBin, sign, timeMS, body) {
  const sig = await sign(signingBytes(kind, signerBin, timeMS, body))
  return encode({ kind, signer: signerBin, time: timeMS, body, sig })
}

// Stream framing: unsigned LEB128 length, then the bytes.
export function frame (bytes) {
  const len = []
  let n = bytes.length
  do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; len.push(b) } while (n)
  const out = new Uint8Array(len.length + bytes.length)
  out.set(len); out.set(bytes, len.length)
  return out
}
export function unframe (buf, max) {
  let n = 0; let shift = 0; let i = 0
  for (; i < buf.length; i++) {
    n += (buf[i] & 0x7f) * 2 ** shift
    shift += 7
    if (!(buf[i] & 0x80)) { i++; break }
  }
  if (n > max) fail(`frame of ${n} bytes, limit ${max}`)
  if (buf.length - i < n) fail('short frame')
  return buf.subarray(i, i + n)
}
