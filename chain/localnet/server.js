#!/usr/bin/env node
'use strict';
// VFT localnet: a single-node Solana JSON-RPC (HTTP) and PubSub (websocket)
// server around LiteSVM, for development and tests. Loopback only.
//
//   node server.js [--rpc-port 8899] [--ws-port RPC+1] [--host 127.0.0.1] [--slot-ms 400]
//                  [--exit-on-stdin-close] [--verbose]

const http = require('node:http');
const net = require('node:net');
const crypto = require('node:crypto');
const { WebSocketServer } = require('ws');
const { Chain } = require('./lib/chain');
const { Methods, RpcError } = require('./lib/rpc');
const { PubSub } = require('./lib/pubsub');

const MAX_BODY = 10 * 1024 * 1024;

// stringify writes BigInt values as plain JSON numbers (u64 amounts
// exceed 2^53 and must not lose precision).
const BIG = `@@bigint${crypto.randomBytes(6).toString('hex')}@@`;
const BIG_RE = new RegExp(`"${BIG}(\\d+)"`, 'g');
function stringify(v) {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? BIG + x.toString() : x)).replace(BIG_RE, '$1');
}

// parseRequest is JSON.parse that keeps integer request ids beyond 2^53
// exact (solana-go's websocket client uses random 63-bit ids): they are
// carried as marked strings that stringify writes back as numbers.
const BIG_ID_RE = /("id"\s*:\s*)(\d{16,})(?=\s*[,}])/g;
function parseRequest(text) {
  return JSON.parse(text.replace(BIG_ID_RE, `$1"${BIG}$2"`));
}

function parseArgs(argv) {
  const opts = { rpcPort: 8899, wsPort: null, host: '127.0.0.1', slotMs: 400, exitOnStdinClose: false, verbose: false };
  const intArg = (name, v, min) => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min || n > 65535) {
      throw new Error(`${name} wants an integer from ${min} to 65535, got ${JSON.stringify(v)}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let val;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      val = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const next = () => (val !== undefined ? val : argv[++i]);
    switch (a) {
      case '--rpc-port': opts.rpcPort = intArg(a, next(), 0); break;
      case '--ws-port': opts.wsPort = intArg(a, next(), 0); break;
      case '--host': opts.host = next(); break;
      case '--slot-ms': opts.slotMs = intArg(a, next(), 1); break;
      case '--exit-on-stdin-close': opts.exitOnStdinClose = true; break;
      case '--verbose': opts.verbose = true; break;
      case '-h':
      case '--help':
        process.stdout.write('usage: node server.js [--rpc-port 8899] [--ws-port RPC+1] [--host 127.0.0.1] [--slot-ms 400] [--exit-on-stdin-close] [--verbose]\n');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${JSON.stringify(argv[i])}`);
    }
  }
  if (!isLoopback(opts.host)) throw new Error(`--host ${opts.host} is not a loopback address; localnet listens on loopback only`);
  if (opts.wsPort === null && opts.rpcPort === 65535) throw new Error('--rpc-port 65535 leaves no room for the websocket port; pass --ws-port');
  return opts;
}

function isLoopback(host) {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1';
  return false;
}

// isRpcMethod reports whether name is a served method: a public method of
// Methods (helpers there start with an underscore).
function isRpcMethod(name) {
  return name !== 'constructor' && !name.startsWith('_') &&
    Object.prototype.hasOwnProperty.call(Methods.prototype, name);
}

// handleCall answers one JSON-RPC request object; it returns undefined for
// notifications (requests without an id).
function handleCall(methods, req, log) {
  const isObj = req !== null && typeof req === 'object' && !Array.isArray(req);
  const id = isObj && 'id' in req ? req.id : null;
  const notification = isObj && !('id' in req);
  const reply = (body) => (notification ? undefined : { jsonrpc: '2.0', ...body, id });
  if (!isObj || req.jsonrpc !== '2.0' || typeof req.method !== 'string' ||
      (req.params !== undefined && !Array.isArray(req.params) && typeof req.params !== 'object')) {
    return { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid request' }, id };
  }
  const fn = isRpcMethod(req.method) ? methods[req.method] : undefined;
  if (!fn) return reply({ error: { code: -32601, message: 'Method not found' } });
  try {
    const params = Array.isArray(req.params) ? req.params : [];
    return reply({ result: fn.call(methods, params) });
  } catch (e) {
    if (e instanceof RpcError) {
      const error = { code: e.code, message: e.message };
      if (e.data !== undefined) error.data = e.data;
      return reply({ error });
    }
    log(`internal error in ${req.method}: ${e.stack || e}`);
    return reply({ error: { code: -32603, message: `Internal error: ${e.message}` } });
  }
}

function handleBody(methods, body, log) {
  let req;
  try {
    req = parseRequest(body);
  } catch {
    return { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null };
  }
  if (Array.isArray(req)) {
    if (req.length === 0) return { jsonrpc: '2.0', error: { code: -32600, message: 'Invalid request' }, id: null };
    const out = req.map((r) => handleCall(methods, r, log)).filter((r) => r !== undefined);
    return out.length ? out : undefined;
  }
  return handleCall(methods, req, log);
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

// listenBoth opens the RPC and websocket ports. Without --ws-port the
// websocket goes on the RPC port + 1, Solana's convention, which clients use
// to derive one URL from the other; with a random RPC port that is retried
// until both are free.
async function listenBoth(httpServer, wsHttp, opts) {
  for (let attempt = 1; ; attempt++) {
    const rpcPort = await listen(httpServer, opts.rpcPort, opts.host);
    const wanted = opts.wsPort ?? rpcPort + 1;
    try {
      if (wanted > 65535) throw Object.assign(new Error(`websocket port ${wanted} is out of range`), { code: 'EADDRINUSE' });
      return [rpcPort, await listen(wsHttp, wanted, opts.host)];
    } catch (e) {
      const retry = opts.wsPort === null && opts.rpcPort === 0 && e.code === 'EADDRINUSE' && attempt < 50;
      if (!retry) throw e;
      await new Promise((resolve) => httpServer.close(resolve));
    }
  }
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`localnet: ${e.message}\n`);
    process.exit(2);
  }
  const log = (msg) => process.stderr.write(`localnet: ${msg}\n`);
  const debug = opts.verbose ? log : () => {};

  const chain = new Chain({ slotMs: opts.slotMs });
  const methods = new Methods(chain);

  const httpServer = http.createServer({
    // Longer than Go's and solana-go's idle-connection timeouts, so a client
    // never reuses a connection the server is closing.
    keepAliveTimeout: 10 * 60 * 1000,
  }, (req, res) => {
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' });
      res.end('Used HTTP Method is not allowed. POST or OPTIONS is required');
      return;
    }
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        res.writeHead(413);
        res.end();
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      const body = Buffer.concat(chunks).toString('utf8');
      debug(`rpc <- ${body.length > 300 ? `${body.slice(0, 300)}...` : body}`);
      const out = handleBody(methods, body, log);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(out === undefined ? '' : stringify(out));
    });
  });

  const wsHttp = http.createServer((_req, res) => {
    res.writeHead(400);
    res.end('websocket only');
  });
  const wss = new WebSocketServer({ server: wsHttp, maxPayload: 1024 * 1024 });
  // ws re-emits the HTTP server's errors on wss, and an 'error' nobody
  // listens to kills the process: a websocket port taken by another
  // program crashed the server instead of being retried. listen() handles
  // those errors.
  wss.on('error', () => {});
  const pubsub = new PubSub(chain, methods, { stringify, parseRequest, log: debug });
  wss.on('connection', (sock) => pubsub.attach(sock));

  let rpcPort;
  let wsPort;
  try {
    [rpcPort, wsPort] = await listenBoth(httpServer, wsHttp, opts);
  } catch (e) {
    log(`cannot listen: ${e.message}`);
    process.exit(1);
  }
  chain.start();
  const host = net.isIPv6(opts.host) ? `[${opts.host}]` : opts.host;
  process.stdout.write(`localnet ready rpc=http://${host}:${rpcPort} ws=ws://${host}:${wsPort}\n`);

  let stopping = false;
  const shutdown = (why) => {
    if (stopping) return;
    stopping = true;
    debug(`shutting down (${why})`);
    chain.stop();
    for (const c of wss.clients) c.terminate();
    wss.close();
    httpServer.closeAllConnections();
    wsHttp.closeAllConnections();
    let open = 2;
    const done = () => {
      if (--open === 0) process.exit(0);
    };
    httpServer.close(done);
    wsHttp.close(done);
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  if (opts.exitOnStdinClose) {
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }
}

if (require.main === module) {
  main();
}

module.exports = { handleBody, stringify, parseRequest, parseArgs };
