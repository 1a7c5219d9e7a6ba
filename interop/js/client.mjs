// An independent VFT client, written from docs/PROTOCOL.md: it joins a VFT
// network (js-libp2p: TCP, Noise, yamux, identify, gossipsub with strict
// signing), checks every message it hears against the doc's rules and the
// test vectors, publishes one heartbeat and one job offer, serves
// /vft/bid/1 to collect the miners' bids, and finally cancels its offer.
//
//   node client.mjs --bootstrap /ip4/127.0.0.1/tcp/4101/p2p/12D3KooW... \
//     [--vectors ../../docs/vectors] [--want-bids 1] [--timeout 90] \
//     [--wait-kinds heartbeat/2,job-offer/1,job-cancel/1]
//
// The last line on stdout is a JSON report; the exit status is 0 when the
// vectors all agree, the heartbeat went out, and the offer got the bids.
import './polyfill.mjs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import { kadDHT } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import * as vft from './vft.mjs'
import { replayVectors } from './selftest.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    bootstrap: { type: 'string', multiple: true, default: [] },
    vectors: { type: 'string', default: join(here, '../../docs/vectors') },
    'want-bids': { type: 'string', default: '1' },
    rendezvous: { type: 'string', default: 'vft/1/mainnet' },
    timeout: { type: 'string', default: '90' },
    // Kinds to verify at least once from other nodes before finishing.
    'wait-kinds': { type: 'string', default: 'heartbeat/2' },
    module: { type: 'string', default: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' }
  }
})
const log = (...a) => console.error('[vft-js]', ...a)
const report = { peer_id: '', vectors: null, protocols: {}, seen: {}, verified: {}, refused: [], heartbeat_published: false, offer: null, bids: [], cancel_published: false, ok: false }
const TOPICS = { heartbeat: '/vft/1/heartbeat', jobs: '/vft/1/jobs', verdicts: '/vft/1/verdicts' }

// 1. The vectors: this implementation must decide each as the doc says.
report.vectors = await replayVectors(args.vectors)
log(`vectors: ${report.vectors.count} checked, ${report.vectors.mismatches.length} mismatches`)

// 2. A libp2p host whose key also signs VFT envelopes (the GossipSub
// author must be the envelope's signer).
const privateKey = await generateKeyPair('Ed25519')
const peerId = peerIdFromPrivateKey(privateKey)
const signerBin = peerId.toMultihash().bytes
const sign = async (bytes) => await privateKey.sign(bytes)
report.peer_id = peerId.toString()

const node = await createLibp2p({
  privateKey,
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  // The test network is on loopback, which js-libp2p refuses to dial by
  // default (like VFT's own p2p.allow_private_addrs = false).
  connectionGater: { denyDialMultiaddr: () => false },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    ping: ping(),
    identify: identify({ agentVersion: 'vft-interop-js/0.1' }),
    // The VFT DHT (/vft/kad/1.0.0), as a client: for rendezvous.
    dht: kadDHT({ protocol: '/vft/kad/1.0.0', clientMode: true, peerInfoMapper: (p) => p }),
    pubsub: gossipsub({ globalSignaturePolicy: 'StrictSign', allowPublishToZeroTopicPeers: false, emitSelf: false })
  }
})
const pubsub = node.services.pubsub

// Every topic message is checked before delivery and relaying, as a VFT
// node would: the kind, the envelope, the body, the rules, signer = author.
// Offers are de-duplicated by job ID: message IDs are from‖seqno, so a
// re-sent offer is a new message.
const offers = new Map()
async function checkTopicMessage (topic, msg) {
  const data = msg.data
  let kind = '?'
  try {
    kind = vft.kindOf(data)
    report.seen[kind] = (report.seen[kind] ?? 0) + 1
    const allowed = { [TOPICS.heartbeat]: ['heartbeat/2'], [TOPICS.jobs]: ['job-offer/1', 'job-cancel/1'], [TOPICS.verdicts]: ['job-verdict/1'] }[topic]
    if (!allowed.includes(kind)) throw new vft.Invalid(`kind ${kind} on ${topic}`)
    const m = vft.open(data, kind, Date.now())
    await vft.checkRules(m, Date.now())
    if (msg.type !== 'signed' || msg.from.toString() !== m.signerText) throw new vft.Invalid(`signed by ${m.signerText}, published by ${msg.from}`)
    if (kind === 'job-offer/1') {
      const id = await vft.jobID(data)
      if (!offers.has(id)) offers.set(id, m)
    }
    if (kind === 'job-cancel/1' && offers.has(m.body.job) && offers.get(m.body.job).signerText !== m.signerText) {
      throw new vft.Invalid('cancel not by the offer\'s submitter')
    }
    report.verified[kind] = (report.verified[kind] ?? 0) + 1
    return 'accept'
  } catch (e) {
    if (!(e instanceof vft.Invalid)) throw e
    report.refused.push({ topic, kind, reason: e.message })
    log('refused', topic, kind, e.message)
    return 'reject'
  }
}
for (const topic of Object.values(TOPICS)) {
  pubsub.topicValidators.set(topic, async (_from, msg) => (await checkTopicMessage(topic, msg)) === 'accept' ? 'accept' : 'reject')
  pubsub.subscribe(topic)
}

// /vft/bid/1: one framed job-bid/1 in, one framed job-ack/1 out.
let ourJob = null
async function readAll (stream) {
  const chunks = []
  for await (const c of stream.source) chunks.push(c.subarray())
  return Buffer.concat(chunks)
}
await node.handle('/vft/bid/1', async ({ stream, connection }) => {
  try {
    const req = vft.unframe(await readAll(stream), 4096)
    const m = vft.open(req, 'job-bid/1', Date.now())
    if (m.signerText !== connection.remotePeer.toString()) throw new vft.Invalid('bid signed by another peer than the stream\'s')
    const ok = m.body.job === ourJob && BigInt(m.body.price) <= 1_000_000n
    if (ok && !report.bids.some((b) => b.worker === m.signerText)) report.bids.push({ worker: m.signerText, price: Number(m.body.price), free_slots: Number(m.body.free_slots) })
    report.verified['job-bid/1'] = (report.verified['job-bid/1'] ?? 0) + 1
    log('bid from', m.signerText, 'on', m.body.job)
    const ack = await vft.seal('job-ack/1', signerBin, sign, Date.now(), { job: m.body.job, ok, reason: ok ? '' : 'not an open job of this node' })
    await stream.sink([vft.frame(ack)])
  } catch (e) {
    report.refused.push({ protocol: '/vft/bid/1', reason: e.message })
    stream.abort(e)
  }
}, { runOnLimitedConnection: true })

await node.start()
log('peer', report.peer_id)
const deadline = Date.now() + Number(args.timeout) * 1000
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
async function until (what, cond) {
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(250)
  }
}

try {
  for (const a of args.bootstrap) {
    log('dialling', a)
    const conn = await node.dial(multiaddr(a))
    log('connected to', conn.remotePeer.toString())
  }
  // Rendezvous (PROTOCOL.md, Discovery): the providers of
  // CIDv1(raw, sha2-256(namespace)) are the network's nodes; connect to
  // them. Miners send bids only to a submitter they are connected to.
  const rvKey = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(args.rendezvous)))
  report.rendezvous = { namespace: args.rendezvous, key: rvKey.toString(), providers: 0 }
  await until('a DHT server in the routing table', () => node.services.dht.routingTable.size > 0)
  const seen = new Set()
  const wantPeers = Number(args['want-bids'])
  while (node.getConnections().length < wantPeers) {
    if (Date.now() > deadline) throw new Error(`rendezvous found ${seen.size} providers, connected to ${node.getConnections().length}`)
    try {
      for await (const prov of node.contentRouting.findProviders(rvKey, { signal: AbortSignal.timeout(10_000) })) {
        if (seen.has(prov.id.toString()) || prov.id.equals(node.peerId)) continue
        seen.add(prov.id.toString())
        try { await node.dial(prov.id) } catch (e) { log('rendezvous: could not dial', prov.id.toString(), e.message) }
      }
    } catch (e) {
      log('rendezvous lookup:', e.message)
    }
    await sleep(500)
  }
  report.rendezvous.providers = seen.size
  log('rendezvous', rvKey.toString(), 'providers', seen.size, 'connections', node.getConnections().length)
  // 3. Grafted into the mesh of the heartbeat and jobs topics.
  await until('topic peers', () => pubsub.getSubscribers(TOPICS.heartbeat).length > 0 && pubsub.getSubscribers(TOPICS.jobs).length > 0)
  await until('a Go heartbeat', () => (report.verified['heartbeat/2'] ?? 0) > 0)
  for (const c of node.getConnections()) {
    for (const s of c.streams) report.protocols[s.protocol] = true
  }

  // 4. One heartbeat: an edge node with no free slot (so nobody assigns it work).
  const hb = {
    mode: 'edge', version: 'vft-interop-js/0.1', uptime_s: 1, interval_s: 30, network_size: 0, executors: ['wasm'],
    price_floor: 1000, mint: '', free_slots: 0, cpu_cores: 1, memory_bytes: 1 << 30, free_memory_bytes: 1 << 29, gpus: null
  }
  const hbBytes = await vft.seal('heartbeat/2', signerBin, sign, Date.now(), hb)
  vft.open(hbBytes, 'heartbeat/2', Date.now()) // our own rules first
  const sent = await pubsub.publish(TOPICS.heartbeat, hbBytes)
  report.heartbeat_published = sent.recipients.length > 0
  log('heartbeat to', sent.recipients.length, 'peers')

  // 5. One offer, re-sent unchanged every 2 s (same bytes, same job ID)
  // until enough bids arrive.
  const spec = {
    executor: 'wasm', module: args.module, inputs: null, args: null, env: null, seed: 1,
    needs: { cpu: 1, memory: 64 << 20, gpus: 0, gpu_memory: 0, gpu_model: '', timeout_ms: 60000, max_output: 0 },
    verify: { mode: 'exact', k: 1, m: 1 },
    reward: 1_000_000, mint: '', deadline: Date.now() + 10 * 60_000, nonce: new Uint8Array(randomBytes(16))
  }
  const offer = await vft.seal('job-offer/1', signerBin, sign, Date.now(), spec)
  const checked = vft.open(offer, 'job-offer/1', Date.now())
  await vft.checkRules(checked, Date.now())
  ourJob = await vft.jobID(offer)
  report.offer = { job: ourJob, bytes: offer.length }
  log('offering', ourJob)
  const want = Number(args['want-bids'])
  while (report.bids.length < want) {
    if (Date.now() > deadline) throw new Error(`timed out with ${report.bids.length} of ${want} bids`)
    await pubsub.publish(TOPICS.jobs, offer)
    await sleep(2000)
  }

  // 6. Withdraw it: a cancel by the offer's signer.
  const cancel = await vft.seal('job-cancel/1', signerBin, sign, Date.now(), { job: ourJob, reason: 'interop test done' })
  vft.open(cancel, 'job-cancel/1', Date.now())
  report.cancel_published = (await pubsub.publish(TOPICS.jobs, cancel)).recipients.length > 0
  for (const k of args['wait-kinds'].split(',').filter(Boolean)) {
    await until(`a verified ${k} from another node`, () => (report.verified[k] ?? 0) > 0)
  }
  report.ok = report.vectors.mismatches.length === 0 && report.heartbeat_published && report.bids.length >= want && report.refused.length === 0
} catch (e) {
  report.error = e.message
  log('error:', e.message)
} finally {
  report.mesh = Object.fromEntries(Object.values(TOPICS).map((t) => [t, pubsub.getMeshPeers(t).length]))
  await sleep(500)
  await node.stop()
  console.log(JSON.stringify(report))
  process.exit(report.ok ? 0 : 1)
}
