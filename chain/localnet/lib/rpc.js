'use strict';
// JSON-RPC methods with Solana's request and response shapes.

const wire = require('./wire');
const token = require('./token');
const txerror = require('./txerror');
const parse = require('./parse');

const SOLANA_CORE_VERSION = '2.3.0';

class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

const invalidParams = (msg) => new RpcError(-32602, msg);

function pubkeyParam(v, what = 'pubkey') {
  if (v === undefined) throw invalidParams('`params` should have at least 1 argument(s)');
  try {
    return wire.decodePubkey(v);
  } catch {
    throw invalidParams(`Invalid param: Invalid ${what}`);
  }
}

function configParam(v) {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidParams('Invalid params: expected a configuration object');
  return v;
}

function u64Param(v, what) {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalidParams(`Invalid params: ${what} must be an unsigned integer`);
  return BigInt(v);
}

class Methods {
  constructor(chain) {
    this.chain = chain;
  }

  _context() {
    return { slot: this.chain.slot, apiVersion: SOLANA_CORE_VERSION };
  }

  _withContext(value) {
    return { context: this._context(), value };
  }

  _checkMinContextSlot(cfg) {
    if (cfg.minContextSlot !== undefined && BigInt(cfg.minContextSlot) > this.chain.slot) {
      throw new RpcError(-32016, 'Minimum context slot has not been reached', { contextSlot: this.chain.slot });
    }
  }

  // encodeAccount renders an account as Solana's UiAccount.
  _encodeAccount(acc, encoding = 'binary', dataSlice) {
    if (!acc) return null;
    let data = acc.data;
    if (dataSlice && encoding !== 'jsonParsed') {
      data = data.subarray(dataSlice.offset || 0, (dataSlice.offset || 0) + (dataSlice.length ?? data.length));
    }
    let encoded;
    switch (encoding) {
      case 'binary':
      case 'base58':
        if (data.length > 128) {
          throw new RpcError(-32600, 'Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding.');
        }
        encoded = encoding === 'binary' ? wire.b58encode(data) : [wire.b58encode(data), 'base58'];
        break;
      case 'base64':
        encoded = [data.toString('base64'), 'base64'];
        break;
      case 'jsonParsed':
        encoded = token.isTokenProgram(acc.owner)
          ? token.jsonParsedAccount(acc.owner, acc.data, (m) => this.chain.mintDecimals(m))
          : null;
        if (!encoded) encoded = [data.toString('base64'), 'base64'];
        break;
      default:
        throw invalidParams(`Invalid params: unsupported encoding ${JSON.stringify(encoding)}; use base64, base58 or jsonParsed`);
    }
    return {
      data: encoded,
      executable: acc.executable,
      lamports: acc.lamports,
      owner: acc.owner,
      rentEpoch: acc.rentEpoch,
      space: acc.space,
    };
  }

  // decodeTx decodes an encoded wire transaction given to send/simulate.
  _decodeTx(encoded, encoding = 'base58') {
    if (typeof encoded !== 'string') throw invalidParams('Invalid params: transaction must be a string');
    let bytes;
    if (encoding === 'base58') {
      try {
        bytes = wire.b58decode(encoded);
      } catch (e) {
        throw invalidParams(`invalid base58 encoding: ${e.message}`);
      }
    } else if (encoding === 'base64') {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) throw invalidParams('invalid base64 encoding: invalid symbol');
      bytes = Buffer.from(encoded, 'base64');
    } else {
      throw invalidParams(`Invalid params: unsupported encoding: ${encoding}. Supported encodings: base58, base64`);
    }
    try {
      return wire.parseTransaction(bytes);
    } catch (e) {
      if (e instanceof wire.SanitizeError) throw invalidParams(`invalid transaction: ${e.message}`);
      throw invalidParams(`failed to deserialize solana_transaction::versioned::VersionedTransaction: ${e.message}`);
    }
  }

  _simulationValue(sim, extra = {}) {
    return {
      err: sim.err ? sim.err.json : null,
      logs: sim.logs,
      accounts: null,
      unitsConsumed: sim.unitsConsumed,
      returnData: sim.returnData,
      innerInstructions: null,
      replacementBlockhash: null,
      ...extra,
    };
  }

  // ---- methods ----

  getHealth() {
    return 'ok';
  }

  getVersion() {
    return { 'solana-core': SOLANA_CORE_VERSION, 'feature-set': 0 };
  }

  getSlot(params) {
    this._checkMinContextSlot(configParam(params[0]));
    return this.chain.slot;
  }

  getBlockHeight(params) {
    this._checkMinContextSlot(configParam(params[0]));
    return this.chain.blockHeight;
  }

  getEpochInfo(params) {
    this._checkMinContextSlot(configParam(params[0]));
    return this.chain.epochInfo();
  }

  getTransactionCount() {
    return this.chain.transactionCount;
  }

  getGenesisHash() {
    return this.chain.genesisHash;
  }

  getIdentity() {
    return { identity: wire.b58encode(this.chain.faucet.publicKey) };
  }

  getFirstAvailableBlock() {
    return 0;
  }

  minimumLedgerSlot() {
    return 0;
  }

  getBlockTime(params) {
    const slot = u64Param(params[0], 'slot');
    if (slot > this.chain.slot) throw new RpcError(-32004, `Block not available for slot ${slot}`);
    return this.chain.blockTime();
  }

  getRecentPrioritizationFees() {
    return [];
  }

  getLatestBlockhash(params) {
    this._checkMinContextSlot(configParam(params[0]));
    const { blockhash, lastValidBlockHeight } = this.chain.latest;
    return this._withContext({ blockhash, lastValidBlockHeight });
  }

  isBlockhashValid(params) {
    if (typeof params[0] !== 'string') throw invalidParams('Invalid params: blockhash must be a string');
    this._checkMinContextSlot(configParam(params[1]));
    return this._withContext(this.chain.isBlockhashValid(params[0]));
  }

  getFeeForMessage(params) {
    if (typeof params[0] !== 'string') throw invalidParams('Invalid params: message must be a base64 string');
    let msg;
    try {
      msg = wire.parseMessageBytes(Buffer.from(params[0], 'base64'));
    } catch (e) {
      throw invalidParams(`invalid message: ${e.message}`);
    }
    const valid = this.chain.isBlockhashValid(wire.b58encode(msg.recentBlockhash));
    return this._withContext(valid ? this.chain.fee(msg) : null);
  }

  getMinimumBalanceForRentExemption(params) {
    const len = params[0] === undefined ? 0n : u64Param(params[0], 'data length');
    return this.chain.minimumBalanceForRentExemption(len);
  }

  getBalance(params) {
    const key = pubkeyParam(params[0]);
    this._checkMinContextSlot(configParam(params[1]));
    return this._withContext(this.chain.getBalance(key));
  }

  getAccountInfo(params) {
    const key = pubkeyParam(params[0]);
    const cfg = configParam(params[1]);
    this._checkMinContextSlot(cfg);
    return this._withContext(this._encodeAccount(this.chain.getAccount(key), cfg.encoding, cfg.dataSlice));
  }

  getMultipleAccounts(params) {
    if (!Array.isArray(params[0])) throw invalidParams('Invalid params: expected an array of pubkeys');
    if (params[0].length > 100) throw invalidParams('Too many inputs provided; max 100');
    const keys = params[0].map((k) => pubkeyParam(k));
    const cfg = configParam(params[1]);
    this._checkMinContextSlot(cfg);
    return this._withContext(keys.map((k) => this._encodeAccount(this.chain.getAccount(k), cfg.encoding || 'base64', cfg.dataSlice)));
  }

  getProgramAccounts(params) {
    const program = pubkeyParam(params[0]);
    const cfg = configParam(params[1]);
    const filters = cfg.filters || [];
    const out = [];
    for (const aa of this.chain.svm.getProgramAccounts(program)) {
      const acc = this.chain.getAccount(aa.address);
      if (!acc || !filters.every((f) => matchFilter(f, acc.data))) continue;
      out.push({ pubkey: wire.b58encode(aa.address), account: this._encodeAccount(acc, cfg.encoding || 'base64', cfg.dataSlice) });
    }
    return cfg.withContext ? this._withContext(out) : out;
  }

  getTokenAccountBalance(params) {
    const key = pubkeyParam(params[0]);
    this._checkMinContextSlot(configParam(params[1]));
    const acc = this.chain.getAccount(key);
    if (!acc) throw invalidParams('Invalid param: could not find account');
    if (!token.isTokenAccountData(acc.owner, acc.data)) throw invalidParams('Invalid param: not a Token account');
    const t = token.parseTokenAccount(acc.data);
    const decimals = this.chain.mintDecimals(t.mint);
    if (decimals === null) throw invalidParams('Invalid param: could not find mint');
    return this._withContext(token.uiTokenAmount(t.amount, decimals));
  }

  getTokenSupply(params) {
    const key = pubkeyParam(params[0]);
    const acc = this.chain.getAccount(key);
    if (!acc) throw invalidParams('Invalid param: could not find account');
    if (!token.isMintData(acc.owner, acc.data)) throw invalidParams('Invalid param: not a Token mint');
    const m = token.parseMint(acc.data);
    return this._withContext(token.uiTokenAmount(m.supply, m.decimals));
  }

  getTokenAccountsByOwner(params) {
    const owner = pubkeyParam(params[0]);
    const filter = configParam(params[1]);
    const cfg = configParam(params[2]);
    let programs;
    let mint = null;
    if (filter.mint) {
      mint = wire.b58encode(pubkeyParam(filter.mint, 'mint'));
      const m = this.chain.getAccount(wire.decodePubkey(mint));
      if (!m) throw invalidParams('Invalid param: could not find mint');
      programs = [m.owner];
    } else if (filter.programId) {
      programs = [wire.b58encode(pubkeyParam(filter.programId, 'programId'))];
      if (!token.isTokenProgram(programs[0])) throw invalidParams('Invalid param: unrecognized Token program id');
    } else {
      throw invalidParams('Invalid params: expected a mint or programId filter');
    }
    const ownerStr = wire.b58encode(owner);
    const out = [];
    for (const program of programs) {
      for (const aa of this.chain.svm.getProgramAccounts(wire.decodePubkey(program))) {
        const acc = this.chain.getAccount(aa.address);
        if (!acc || !token.isTokenAccountData(acc.owner, acc.data)) continue;
        const t = token.parseTokenAccount(acc.data);
        if (t.owner !== ownerStr || (mint && t.mint !== mint)) continue;
        out.push({ pubkey: wire.b58encode(aa.address), account: this._encodeAccount(acc, cfg.encoding || 'base64', cfg.dataSlice) });
      }
    }
    return this._withContext(out);
  }

  requestAirdrop(params) {
    const key = pubkeyParam(params[0]);
    const lamports = u64Param(params[1], 'lamports');
    const { signature } = this.chain.airdrop(key, lamports);
    return signature;
  }

  sendTransaction(params) {
    const cfg = configParam(params[1]);
    const tx = this._decodeTx(params[0], cfg.encoding);
    const signature = wire.b58encode(tx.signatures[0]);
    if (!cfg.skipPreflight) {
      if (!wire.verifyTransaction(tx)) throw new RpcError(-32003, 'Transaction signature verification failure');
      this._checkMinContextSlot(cfg);
      let sim;
      if (!this.chain.isBlockhashValid(wire.b58encode(tx.message.recentBlockhash))) {
        sim = { err: txerror.fieldless('BlockhashNotFound'), logs: [], unitsConsumed: 0n, returnData: null };
      } else if (this.chain.txs.has(signature)) {
        sim = { err: txerror.fieldless('AlreadyProcessed'), logs: [], unitsConsumed: 0n, returnData: null };
      } else {
        sim = this.chain.simulate(tx, { sigVerify: false });
      }
      if (sim.err) {
        throw new RpcError(-32002, `Transaction simulation failed: ${sim.err.text}`, this._simulationValue(sim));
      }
    }
    this.chain.execute(tx);
    return signature;
  }

  simulateTransaction(params) {
    const cfg = configParam(params[1]);
    const tx = this._decodeTx(params[0], cfg.encoding);
    if (cfg.sigVerify && cfg.replaceRecentBlockhash) {
      throw invalidParams('sigVerify may not be used with replaceRecentBlockhash');
    }
    if (cfg.sigVerify && !wire.verifyTransaction(tx)) {
      throw new RpcError(-32003, 'Transaction signature verification failure');
    }
    this._checkMinContextSlot(cfg);
    let replacementBlockhash = null;
    let sim;
    if (cfg.replaceRecentBlockhash) {
      replacementBlockhash = { ...this.chain.latest };
    }
    if (!replacementBlockhash && !this.chain.isBlockhashValid(wire.b58encode(tx.message.recentBlockhash))) {
      sim = { err: txerror.fieldless('BlockhashNotFound'), logs: [], unitsConsumed: 0n, returnData: null, postAccounts: new Map() };
    } else {
      sim = this.chain.simulate(tx, { sigVerify: false });
    }
    let accounts = null;
    if (cfg.accounts && Array.isArray(cfg.accounts.addresses)) {
      accounts = cfg.accounts.addresses.map((a) => {
        const key = pubkeyParam(a);
        const post = sim.postAccounts.get(a);
        const acc = post ? accountFromLiteSVM(post) : this.chain.getAccount(key);
        return this._encodeAccount(acc, cfg.accounts.encoding || 'base64');
      });
    }
    return this._withContext(this._simulationValue(sim, {
      accounts,
      innerInstructions: cfg.innerInstructions ? sim.innerInstructions : null,
      replacementBlockhash,
    }));
  }

  getSignatureStatuses(params) {
    if (!Array.isArray(params[0])) throw invalidParams('Invalid params: expected an array of signatures');
    if (params[0].length > 256) throw invalidParams('Too many inputs provided; max 256');
    return this._withContext(params[0].map((s) => {
      const r = this.chain.txs.get(s);
      if (!r) return null;
      const err = r.err ? r.err.json : null;
      return {
        slot: r.slot,
        confirmations: null,
        err,
        status: err ? { Err: err } : { Ok: null },
        confirmationStatus: 'finalized',
      };
    }));
  }

  getSignaturesForAddress(params) {
    const key = pubkeyParam(params[0]);
    const cfg = configParam(params[1]);
    const limit = cfg.limit === undefined ? 1000 : Number(cfg.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalidParams('Invalid limit; max 1000');
    const list = this.chain.byAddress.get(wire.b58encode(key)) || [];
    let i = list.length - 1;
    if (cfg.before) {
      const at = list.lastIndexOf(cfg.before);
      i = at < 0 ? -1 : at - 1;
    }
    const out = [];
    for (; i >= 0 && out.length < limit; i--) {
      if (cfg.until && list[i] === cfg.until) break;
      const r = this.chain.txs.get(list[i]);
      out.push({
        signature: r.signature,
        slot: r.slot,
        err: r.err ? r.err.json : null,
        memo: r.memo,
        blockTime: r.blockTime,
        confirmationStatus: 'finalized',
      });
    }
    return out;
  }

  getTransaction(params) {
    if (typeof params[0] !== 'string') throw invalidParams('Invalid params: signature must be a string');
    const cfg = typeof params[1] === 'string' ? { encoding: params[1] } : configParam(params[1]);
    const r = this.chain.txs.get(params[0]);
    if (!r) return null;
    const encoding = cfg.encoding || 'json';
    const version = r.tx.message.version;
    if (version !== 'legacy' && (cfg.maxSupportedTransactionVersion === undefined || cfg.maxSupportedTransactionVersion < version)) {
      throw new RpcError(-32015, `Transaction version (${version}) is not supported by the requesting client. ` +
        'Please try the request again with the following configuration parameter: "maxSupportedTransactionVersion": 0');
    }
    let transaction;
    switch (encoding) {
      case 'json':
        transaction = jsonTransaction(r.tx);
        break;
      case 'jsonParsed':
        transaction = jsonParsedTransaction(r);
        break;
      case 'base64':
        transaction = [r.tx.bytes.toString('base64'), 'base64'];
        break;
      case 'base58':
        transaction = [wire.b58encode(r.tx.bytes), 'base58'];
        break;
      default:
        throw invalidParams(`Invalid params: unsupported encoding ${JSON.stringify(encoding)}`);
    }
    const meta = transactionMeta(r);
    if (encoding === 'jsonParsed') {
      const keys = r.keys.map(wire.b58encode);
      meta.innerInstructions = r.innerInstructions.map(({ index, instructions }) => ({
        index,
        instructions: instructions.map((ix) => parse.parseInstruction(
          keys[ix.programIdIndex], ix.accounts.map((a) => keys[a]), wire.b58decode(ix.data), ix.stackHeight)),
      }));
    }
    const out = { blockTime: r.blockTime, meta, slot: r.slot, transaction };
    if (cfg.maxSupportedTransactionVersion !== undefined) out.version = version;
    return out;
  }
}

function accountFromLiteSVM(a) {
  if (a.lamports() === 0n) return null;
  const data = Buffer.from(a.data());
  return {
    lamports: a.lamports(), data, owner: wire.b58encode(a.owner()),
    executable: a.executable(), rentEpoch: a.rentEpoch(), space: data.length,
  };
}

function matchFilter(f, data) {
  if (f.dataSize !== undefined) return data.length === f.dataSize;
  if (f.memcmp) {
    const bytes = f.memcmp.encoding === 'base64' ? Buffer.from(f.memcmp.bytes, 'base64') : wire.b58decode(f.memcmp.bytes);
    const off = f.memcmp.offset || 0;
    return data.length >= off + bytes.length && data.subarray(off, off + bytes.length).equals(bytes);
  }
  throw invalidParams('Invalid params: unsupported filter');
}

function transactionMeta(r) {
  const err = r.err ? r.err.json : null;
  const meta = {
    computeUnitsConsumed: r.unitsConsumed,
    err,
    fee: r.fee,
    innerInstructions: r.innerInstructions,
    loadedAddresses: {
      readonly: r.loaded.readonly.map(wire.b58encode),
      writable: r.loaded.writable.map(wire.b58encode),
    },
    logMessages: r.logs,
    postBalances: r.postBalances,
    postTokenBalances: r.postTokenBalances,
    preBalances: r.preBalances,
    preTokenBalances: r.preTokenBalances,
    rewards: [],
    status: err ? { Err: err } : { Ok: null },
  };
  if (r.returnData) meta.returnData = r.returnData;
  return meta;
}

function jsonTransaction(tx) {
  const m = tx.message;
  const message = {
    accountKeys: m.accountKeys.map(wire.b58encode),
    header: m.header,
    instructions: m.instructions.map((ix) => ({
      accounts: ix.accounts,
      data: wire.b58encode(ix.data),
      programIdIndex: ix.programIdIndex,
      stackHeight: null,
    })),
    recentBlockhash: wire.b58encode(m.recentBlockhash),
  };
  if (m.version !== 'legacy') {
    message.addressTableLookups = m.addressTableLookups.map((l) => ({
      accountKey: wire.b58encode(l.accountKey),
      readonlyIndexes: l.readonlyIndexes,
      writableIndexes: l.writableIndexes,
    }));
  }
  return { message, signatures: tx.signatures.map(wire.b58encode) };
}

// jsonParsedTransaction gives account keys with their roles and decodes
// System, SPL Token, ATA and Memo instructions; others stay partially decoded.
function jsonParsedTransaction(r) {
  const m = r.tx.message;
  const nStatic = m.accountKeys.length;
  const nLoadedW = r.loaded.writable.length;
  const accountKeys = r.keys.map((k, i) => ({
    pubkey: wire.b58encode(k),
    signer: i < m.header.numRequiredSignatures,
    source: i < nStatic ? 'transaction' : 'lookupTable',
    writable: i < nStatic ? wire.isStaticWritable(m, i) : i < nStatic + nLoadedW,
  }));
  const instructions = m.instructions.map((ix) => parse.parseInstruction(
    accountKeys[ix.programIdIndex].pubkey, ix.accounts.map((a) => accountKeys[a].pubkey), ix.data));
  const message = { accountKeys, instructions, recentBlockhash: wire.b58encode(m.recentBlockhash) };
  if (m.version !== 'legacy') {
    message.addressTableLookups = m.addressTableLookups.map((l) => ({
      accountKey: wire.b58encode(l.accountKey),
      readonlyIndexes: l.readonlyIndexes,
      writableIndexes: l.writableIndexes,
    }));
  }
  return { message, signatures: r.tx.signatures.map(wire.b58encode) };
}

module.exports = { Methods, RpcError, SOLANA_CORE_VERSION };
