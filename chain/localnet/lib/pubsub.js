'use strict';
// Solana PubSub over websocket: signature, account, logs, slot and root
// subscriptions with Solana's notification shapes.

const wire = require('./wire');

const KINDS = {
  signatureSubscribe: 'signature',
  accountSubscribe: 'account',
  logsSubscribe: 'logs',
  slotSubscribe: 'slot',
  rootSubscribe: 'root',
};
const UNSUBSCRIBE = {
  signatureUnsubscribe: 'signature',
  accountUnsubscribe: 'account',
  logsUnsubscribe: 'logs',
  slotUnsubscribe: 'slot',
  rootUnsubscribe: 'root',
};

class PubSub {
  constructor(chain, methods, { stringify, parseRequest, log }) {
    this.chain = chain;
    this.methods = methods;
    this.stringify = stringify;
    this.parseRequest = parseRequest;
    this.log = log;
    this.nextId = 0;
    this.subs = new Map(); // id -> { kind, sock, ... }
    chain.on('slot', (slot) => this.onSlot(slot));
    chain.on('transaction', (r) => this.onTransaction(r));
  }

  attach(sock) {
    sock.on('message', (data) => {
      let req;
      try {
        req = this.parseRequest(data.toString('utf8'));
      } catch {
        this.send(sock, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
        return;
      }
      const reqs = Array.isArray(req) ? req : [req];
      const out = [];
      const after = [];
      for (const r of reqs) out.push(this.handle(sock, r, after));
      this.send(sock, Array.isArray(req) ? out : out[0]);
      for (const f of after) f();
    });
    sock.on('close', () => {
      for (const [id, s] of this.subs) if (s.sock === sock) this.subs.delete(id);
    });
    sock.on('error', () => {});
  }

  send(sock, msg) {
    if (sock.readyState === 1) sock.send(this.stringify(msg));
  }

  notify(sub, id, method, result) {
    this.send(sub.sock, { jsonrpc: '2.0', method, params: { result, subscription: id } });
  }

  // handle answers one request; work that must follow the reply (an
  // immediate notification) is pushed to after.
  handle(sock, req, after) {
    const id = req && typeof req === 'object' && 'id' in req ? req.id : null;
    const fail = (code, message) => ({ jsonrpc: '2.0', error: { code, message }, id });
    if (!req || req.jsonrpc !== '2.0' || typeof req.method !== 'string') return fail(-32600, 'Invalid request');
    const params = Array.isArray(req.params) ? req.params : [];
    if (UNSUBSCRIBE[req.method]) {
      const s = this.subs.get(params[0]);
      if (!s || s.kind !== UNSUBSCRIBE[req.method] || s.sock !== sock) return fail(-32602, 'Invalid subscription id.');
      this.subs.delete(params[0]);
      return { jsonrpc: '2.0', result: true, id };
    }
    const kind = KINDS[req.method];
    if (!kind) return fail(-32601, 'Method not found');
    const sub = { kind, sock };
    const cfg = (i) => (params[i] && typeof params[i] === 'object' ? params[i] : {});
    try {
      switch (kind) {
        case 'signature':
          if (typeof params[0] !== 'string' || wire.b58decode(params[0]).length !== 64) return fail(-32602, 'Invalid Request: Invalid signature');
          sub.signature = params[0];
          break;
        case 'account':
          sub.pubkey = wire.decodePubkey(params[0]);
          sub.address = wire.b58encode(sub.pubkey);
          sub.encoding = cfg(1).encoding || 'binary';
          if (!['binary', 'base58', 'base64', 'jsonParsed'].includes(sub.encoding)) return fail(-32602, 'Invalid params: unsupported encoding');
          break;
        case 'logs':
          if (params[0] === 'all' || params[0] === 'allWithVotes') {
            sub.mentions = null;
          } else if (params[0] && Array.isArray(params[0].mentions) && params[0].mentions.length === 1) {
            sub.mentions = wire.b58encode(wire.decodePubkey(params[0].mentions[0]));
          } else {
            return fail(-32602, 'Invalid Request: Only 1 address supported');
          }
          break;
        default:
      }
    } catch {
      return fail(-32602, 'Invalid params');
    }
    const subId = this.nextId++;
    this.subs.set(subId, sub);
    if (kind === 'signature') {
      const r = this.chain.txs.get(sub.signature);
      if (r) after.push(() => this.signatureDone(subId, sub, r));
    }
    return { jsonrpc: '2.0', result: subId, id };
  }

  signatureDone(id, sub, r) {
    if (!this.subs.has(id)) return;
    this.subs.delete(id);
    this.notify(sub, id, 'signatureNotification', {
      context: { slot: r.slot },
      value: { err: r.err ? r.err.json : null },
    });
  }

  onSlot(slot) {
    for (const [id, s] of this.subs) {
      if (s.kind === 'slot') this.notify(s, id, 'slotNotification', { parent: slot - 1n, root: slot, slot });
      else if (s.kind === 'root') this.notify(s, id, 'rootNotification', slot);
    }
  }

  onTransaction(r) {
    const touched = new Set(r.keys.map((k) => wire.b58encode(k)));
    for (const [id, s] of this.subs) {
      switch (s.kind) {
        case 'signature':
          if (s.signature === r.signature) this.signatureDone(id, s, r);
          break;
        case 'account':
          if (touched.has(s.address)) {
            const acc = this.chain.getAccount(s.pubkey) || {
              lamports: 0n, data: Buffer.alloc(0), owner: '11111111111111111111111111111111',
              executable: false, rentEpoch: 0n, space: 0,
            };
            let value;
            try {
              value = this.methods._encodeAccount(acc, s.encoding);
            } catch (e) {
              this.log(`accountNotification ${s.address}: ${e.message}`);
              break;
            }
            this.notify(s, id, 'accountNotification', { context: { slot: r.slot }, value });
          }
          break;
        case 'logs':
          if (s.mentions === null || touched.has(s.mentions)) {
            this.notify(s, id, 'logsNotification', {
              context: { slot: r.slot },
              value: { signature: r.signature, err: r.err ? r.err.json : null, logs: r.logs },
            });
          }
          break;
        default:
      }
    }
  }
}

module.exports = { PubSub };
