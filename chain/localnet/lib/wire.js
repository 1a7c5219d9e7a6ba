'use strict';
// Solana wire formats: base58, compact-u16 ("shortvec"), transactions and
// messages (legacy and v0), ed25519 signature checks.

const crypto = require('node:crypto');

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const ALPHABET_MAP = new Map([...ALPHABET].map((c, i) => [c, i]));

function b58encode(bytes) {
  bytes = Buffer.from(bytes);
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  const digits = [];
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i];
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j] << 8;
      digits[j] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = '1'.repeat(zeros);
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i]];
  return out;
}

function b58decode(str) {
  if (typeof str !== 'string') throw new Error('not a string');
  let zeros = 0;
  while (zeros < str.length && str[zeros] === '1') zeros++;
  const bytes = [];
  for (let i = zeros; i < str.length; i++) {
    const v = ALPHABET_MAP.get(str[i]);
    if (v === undefined) throw new Error(`invalid base58 character ${JSON.stringify(str[i])}`);
    let carry = v;
    for (let j = 0; j < bytes.length; j++) {
      carry += bytes[j] * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  const out = Buffer.alloc(zeros + bytes.length);
  for (let i = 0; i < bytes.length; i++) out[out.length - 1 - i] = bytes[i];
  return out;
}

// decodePubkey parses a base58 address and insists on 32 bytes.
function decodePubkey(str) {
  const b = b58decode(str);
  if (b.length !== 32) throw new Error(`invalid pubkey length ${b.length}`);
  return b;
}

class Reader {
  constructor(buf) {
    this.buf = buf;
    this.off = 0;
  }
  need(n) {
    if (this.off + n > this.buf.length) throw new Error('unexpected end of input');
  }
  u8() {
    this.need(1);
    return this.buf[this.off++];
  }
  bytes(n) {
    this.need(n);
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
  shortvec() {
    let len = 0;
    for (let size = 0; size < 3; size++) {
      const b = this.u8();
      len |= (b & 0x7f) << (size * 7);
      if ((b & 0x80) === 0) return len;
    }
    throw new Error('invalid compact-u16');
  }
}

// parseMessage decodes a legacy or v0 message.
function parseMessage(r) {
  const start = r.off;
  let version = 'legacy';
  const first = r.buf[r.off];
  if (first !== undefined && first & 0x80) {
    version = first & 0x7f;
    r.off++;
    if (version !== 0) throw new Error(`unsupported transaction version ${version}`);
  }
  const header = {
    numRequiredSignatures: r.u8(),
    numReadonlySignedAccounts: r.u8(),
    numReadonlyUnsignedAccounts: r.u8(),
  };
  const nkeys = r.shortvec();
  const accountKeys = [];
  for (let i = 0; i < nkeys; i++) accountKeys.push(Buffer.from(r.bytes(32)));
  const recentBlockhash = Buffer.from(r.bytes(32));
  const nix = r.shortvec();
  const instructions = [];
  for (let i = 0; i < nix; i++) {
    const programIdIndex = r.u8();
    const nacc = r.shortvec();
    const accounts = [...r.bytes(nacc)];
    const ndata = r.shortvec();
    const data = Buffer.from(r.bytes(ndata));
    instructions.push({ programIdIndex, accounts, data });
  }
  const addressTableLookups = [];
  if (version === 0) {
    const nlut = r.shortvec();
    for (let i = 0; i < nlut; i++) {
      const accountKey = Buffer.from(r.bytes(32));
      const writableIndexes = [...r.bytes(r.shortvec())];
      const readonlyIndexes = [...r.bytes(r.shortvec())];
      addressTableLookups.push({ accountKey, writableIndexes, readonlyIndexes });
    }
  }
  const msg = { version, header, accountKeys, recentBlockhash, instructions, addressTableLookups };
  msg.bytes = Buffer.from(r.buf.subarray(start, r.off));
  sanitizeMessage(msg);
  return msg;
}

function sanitizeMessage(msg) {
  const h = msg.header;
  const nkeys = msg.accountKeys.length;
  let nloaded = 0;
  for (const l of msg.addressTableLookups) nloaded += l.writableIndexes.length + l.readonlyIndexes.length;
  if (h.numRequiredSignatures === 0 || h.numRequiredSignatures > nkeys ||
      h.numReadonlySignedAccounts >= h.numRequiredSignatures ||
      h.numReadonlyUnsignedAccounts > nkeys - h.numRequiredSignatures) {
    throw new SanitizeError();
  }
  for (const ix of msg.instructions) {
    if (ix.programIdIndex === 0 || ix.programIdIndex >= nkeys) throw new SanitizeError();
    for (const a of ix.accounts) if (a >= nkeys + nloaded) throw new SanitizeError();
  }
}

class SanitizeError extends Error {
  constructor() {
    super('Transaction failed to sanitize accounts offsets correctly');
    this.txErr = 'SanitizeFailure';
  }
}

function parseMessageBytes(buf) {
  const r = new Reader(Buffer.from(buf));
  const msg = parseMessage(r);
  if (r.off !== r.buf.length) throw new Error('trailing bytes after message');
  return msg;
}

// parseTransaction decodes a wire transaction (legacy or v0).
function parseTransaction(buf) {
  const r = new Reader(Buffer.from(buf));
  const nsig = r.shortvec();
  const signatures = [];
  for (let i = 0; i < nsig; i++) signatures.push(Buffer.from(r.bytes(64)));
  const message = parseMessage(r);
  if (r.off !== r.buf.length) throw new Error('trailing bytes after transaction');
  if (signatures.length !== message.header.numRequiredSignatures) throw new SanitizeError();
  return { signatures, message, bytes: Buffer.from(buf) };
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function verifySignature(pubkey, message, signature) {
  try {
    const key = crypto.createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, pubkey]),
      format: 'der',
      type: 'spki',
    });
    return crypto.verify(null, message, key, signature);
  } catch {
    return false;
  }
}

// verifyTransaction checks every required signature over the message bytes.
function verifyTransaction(tx) {
  const m = tx.message;
  for (let i = 0; i < m.header.numRequiredSignatures; i++) {
    if (!verifySignature(m.accountKeys[i], m.bytes, tx.signatures[i])) return false;
  }
  return true;
}

// isStaticWritable reports whether static account key i is writable.
function isStaticWritable(msg, i) {
  const h = msg.header;
  const n = msg.accountKeys.length;
  if (i < h.numRequiredSignatures) return i < h.numRequiredSignatures - h.numReadonlySignedAccounts;
  return i < n - h.numReadonlyUnsignedAccounts;
}

function encodeShortvec(n) {
  const out = [];
  for (;;) {
    let b = n & 0x7f;
    n >>= 7;
    if (n === 0) {
      out.push(b);
      return Buffer.from(out);
    }
    out.push(b | 0x80);
  }
}

// A keypair held by the server itself (the faucet).
class Keypair {
  constructor() {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
    this.privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    this.publicKey = Buffer.from(jwk.x, 'base64url');
  }
  sign(msg) {
    return crypto.sign(null, msg, this.privateKey);
  }
}

const SYSTEM_PROGRAM = Buffer.alloc(32);

// buildTransferTx builds and signs a legacy System transfer.
function buildTransferTx(from, to, lamports, blockhash) {
  const data = Buffer.alloc(12);
  data.writeUInt32LE(2, 0);
  data.writeBigUInt64LE(BigInt(lamports), 4);
  const message = Buffer.concat([
    Buffer.from([1, 0, 1]),
    encodeShortvec(3), from.publicKey, to, SYSTEM_PROGRAM,
    blockhash,
    encodeShortvec(1), Buffer.from([2]), encodeShortvec(2), Buffer.from([0, 1]), encodeShortvec(data.length), data,
  ]);
  const sig = from.sign(message);
  return Buffer.concat([encodeShortvec(1), sig, message]);
}

module.exports = {
  b58encode, b58decode, decodePubkey, parseTransaction, parseMessageBytes, verifyTransaction,
  isStaticWritable, Keypair, buildTransferTx, SanitizeError,
};
