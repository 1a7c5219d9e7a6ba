// Replays docs/vectors/ through vft.mjs: every vector's decision, job ID,
// commitment and signing bytes must match. Usage: node selftest.mjs DIR
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import * as vft from './vft.mjs'

export async function replayVectors (dir) {
  const all = new Map()
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    for (const v of JSON.parse(readFileSync(join(dir, f), 'utf8'))) all.set(v.name, v)
  }
  const mismatches = []
  const byKind = {}
  for (const v of all.values()) {
    const bytes = Buffer.from(v.envelope_hex, 'hex')
    let err = null
    try {
      const lim = { size: v.max_size, age: v.max_age_ms, future: v.max_future_ms }
      const want = vft.LIMITS[v.kind]
      if (want.size !== lim.size || want.age !== lim.age || want.future !== lim.future) {
        mismatches.push(`${v.name}: limits ${JSON.stringify(lim)}, the doc says ${JSON.stringify(want)}`)
      }
      const msg = vft.open(bytes, v.kind, v.now_ms)
      await vft.checkRules(msg, v.now_ms)
      if (v.kind === 'job-cancel/1') {
        const offer = all.get(v.offer_vector)
        const o = vft.open(Buffer.from(offer.envelope_hex, 'hex'), 'job-offer/1', offer.now_ms)
        if (o.signerText !== msg.signerText) throw new vft.Invalid('cancel not by its submitter')
      }
      if (v.kind === 'job-reveal/1') {
        const c = vft.commitment(msg.body.result, msg.signer, msg.body.salt)
        if (Buffer.from(c).toString('hex') !== v.commitment_hex) throw new vft.Invalid('reveal does not match its commitment')
      }
      if (v.kind === 'job-offer/1' && await vft.jobID(bytes) !== v.job_id) mismatches.push(`${v.name}: job ID ${await vft.jobID(bytes)}, vector ${v.job_id}`)
      const sb = vft.signingBytes(v.kind, msg.signer, BigInt(msg.time) > Number.MAX_SAFE_INTEGER ? BigInt(msg.time) : msg.time, msg.body)
      if (Buffer.from(sb).toString('hex') !== v.signing_bytes_hex) mismatches.push(`${v.name}: signing bytes differ`)
    } catch (e) {
      if (!(e instanceof vft.Invalid)) throw e
      err = e
    }
    if (v.valid && err) mismatches.push(`${v.name}: valid, but refused: ${err.message}`)
    if (!v.valid && !err) mismatches.push(`${v.name}: invalid (${v.error}), but accepted`)
    byKind[v.kind] = (byKind[v.kind] ?? 0) + 1
  }
  return { count: all.size, byKind, mismatches }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await replayVectors(process.argv[2] ?? '../../docs/vectors')
  console.log(JSON.stringify(r, null, 1))
  process.exit(r.mismatches.length ? 1 : 0)
}
