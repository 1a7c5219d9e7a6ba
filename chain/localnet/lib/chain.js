'use strict';
// Chain: one LiteSVM instance plus what a validator adds around it — slots,
// block heights, a window of valid blockhashes, a faucet, and a history of
// processed transactions indexed by signature and by address.

const { EventEmitter } = require('node:events');
const I = require('litesvm/dist/internal');
const wire = require('./wire');
const token = require('./token');
const txerror = require('./txerror');

const MAX_PROCESSING_AGE = 150; // blocks a blockhash stays valid (Solana's MAX_PROCESSING_AGE)
const SLOTS_PER_EPOCH = 432000n;
const MAX_SLOT_HASHES = 512;
const LAMPORTS_PER_SIGNATURE = 5000n;
const FAUCET_LAMPORTS = 500_000_000n * 1_000_000_000n;
const MEMO_PROGRAMS = new Set([
  'MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr',
  'Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo',
]);
const COMPUTE_BUDGET_PROGRAM = 'ComputeBudget111111111111111111111111111111';
const ALT_PROGRAM = 'AddressLookupTab1e1111111111111111111111111';
const SYSTEM_PROGRAM = Buffer.alloc(32);

class Chain extends EventEmitter {
  constructor({ slotMs = 400, now = () => Date.now() } = {}) {
    super();
    this.slotMs = slotMs;
    this.now = now;
    this.svm = new I.LiteSvm();
    this.svm.setSigverify(true);
    // Blockhash age is enforced here (a window of recent hashes), not by
    // LiteSVM, which accepts only its single latest hash.
    this.svm.setBlockhashCheck(false);
    // Start where LiteSVM's clock starts, so that time only moves forward.
    this.slot = this.svm.getClock().slot;
    this.blockHeight = this.slot;
    this.slotHashes = []; // newest first, as in the SlotHashes sysvar
    this.slotHashesSynced = true;
    this.transactionCount = 0n;
    this.blockhashes = new Map(); // base58 -> { slot, lastValidBlockHeight }
    this.txs = new Map(); // base58 signature -> record
    this.byAddress = new Map(); // base58 address -> [signature, ...] oldest first
    this.genesisHash = this.svm.latestBlockhash();
    this.faucet = new wire.Keypair();
    this.svm.setAccount(this.faucet.publicKey,
      new I.Account(FAUCET_LAMPORTS, new Uint8Array(0), SYSTEM_PROGRAM, false, 0n));
    this.timer = null;
    this.advance();
  }

  start() {
    if (!this.timer) this.timer = setInterval(() => this.advance(), this.slotMs);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  // advance produces the next block: a new slot, block height and blockhash.
  advance() {
    this.slot += 1n;
    this.blockHeight += 1n;
    this.svm.warpToSlot(this.slot);
    const clock = this.svm.getClock();
    clock.unixTimestamp = BigInt(Math.floor(this.now() / 1000));
    clock.epoch = this.slot / SLOTS_PER_EPOCH;
    this.svm.setClock(clock);
    this.svm.expireBlockhash();
    const blockhash = this.svm.latestBlockhash();
    this.latest = { blockhash, lastValidBlockHeight: this.blockHeight + BigInt(MAX_PROCESSING_AGE) };
    this.blockhashes.set(blockhash, { slot: this.slot, lastValidBlockHeight: this.latest.lastValidBlockHeight });
    this.slotHashes.unshift({ slot: this.slot, hash: blockhash });
    if (this.slotHashes.length > MAX_SLOT_HASHES) this.slotHashes.pop();
    this.slotHashesSynced = false;
    for (const [h, v] of this.blockhashes) {
      if (v.lastValidBlockHeight + 10n >= this.blockHeight) break;
      this.blockhashes.delete(h);
    }
    this.emit('slot', this.slot);
  }

  // syncSysvars writes the SlotHashes sysvar (read by e.g. the address
  // lookup table program) before a transaction runs; doing it per slot
  // would cost more than the rest of the slot.
  syncSysvars() {
    if (this.slotHashesSynced) return;
    this.svm.setSlotHashes(this.slotHashes);
    this.slotHashesSynced = true;
  }

  blockTime() {
    return Number(this.svm.getClock().unixTimestamp);
  }

  epochInfo() {
    return {
      absoluteSlot: this.slot,
      blockHeight: this.blockHeight,
      epoch: this.slot / SLOTS_PER_EPOCH,
      slotIndex: this.slot % SLOTS_PER_EPOCH,
      slotsInEpoch: SLOTS_PER_EPOCH,
      transactionCount: this.transactionCount,
    };
  }

  isBlockhashValid(blockhash) {
    const v = this.blockhashes.get(blockhash);
    return v !== undefined && this.blockHeight <= v.lastValidBlockHeight;
  }

  // getAccount returns the account at a 32-byte address, or null if it does
  // not exist (Solana treats zero-lamport accounts as absent).
  getAccount(pubkey) {
    const a = this.svm.getAccount(pubkey);
    if (!a || a.lamports() === 0n) return null;
    const data = Buffer.from(a.data());
    return {
      lamports: a.lamports(),
      data,
      owner: wire.b58encode(a.owner()),
      executable: a.executable(),
      rentEpoch: a.rentEpoch(),
      space: data.length,
    };
  }

  getBalance(pubkey) {
    return this.svm.getBalance(pubkey) ?? 0n;
  }

  mintDecimals(mint) {
    const a = this.getAccount(wire.decodePubkey(mint));
    if (!a || !token.isMintData(a.owner, a.data)) return null;
    return token.parseMint(a.data).decimals;
  }

  minimumBalanceForRentExemption(len) {
    return this.svm.minimumBalanceForRentExemption(BigInt(len));
  }

  // fee is what the runtime charges: 5000 lamports per signature plus the
  // compute-unit price times the compute-unit limit.
  fee(msg) {
    let fee = LAMPORTS_PER_SIGNATURE * BigInt(msg.header.numRequiredSignatures);
    let price = 0n;
    let limit = null;
    let others = 0;
    for (const ix of msg.instructions) {
      const program = wire.b58encode(msg.accountKeys[ix.programIdIndex]);
      if (program !== COMPUTE_BUDGET_PROGRAM) {
        others++;
        continue;
      }
      if (ix.data[0] === 2 && ix.data.length >= 5) limit = BigInt(ix.data.readUInt32LE(1));
      if (ix.data[0] === 3 && ix.data.length >= 9) price = ix.data.readBigUInt64LE(1);
    }
    if (limit === null) limit = BigInt(Math.min(1_400_000, 200_000 * others));
    if (limit > 1_400_000n) limit = 1_400_000n;
    fee += (price * limit + 999_999n) / 1_000_000n;
    return fee;
  }

  // loadedAddresses resolves v0 address-table lookups.
  loadedAddresses(msg) {
    const loaded = { writable: [], readonly: [] };
    for (const l of msg.addressTableLookups) {
      const a = this.getAccount(l.accountKey);
      if (!a) throw txerror.fieldless('AddressLookupTableNotFound');
      if (a.owner !== ALT_PROGRAM) throw txerror.fieldless('InvalidAddressLookupTableOwner');
      if (a.data.length < 56 || (a.data.length - 56) % 32 !== 0) throw txerror.fieldless('InvalidAddressLookupTableData');
      const n = (a.data.length - 56) / 32;
      const at = (i) => {
        if (i >= n) throw txerror.fieldless('InvalidAddressLookupTableIndex');
        return Buffer.from(a.data.subarray(56 + 32 * i, 88 + 32 * i));
      };
      for (const i of l.writableIndexes) loaded.writable.push(at(i));
      for (const i of l.readonlyIndexes) loaded.readonly.push(at(i));
    }
    return loaded;
  }

  tokenBalances(keys) {
    const out = [];
    keys.forEach((k, i) => {
      const a = this.getAccount(k);
      if (!a || !token.isTokenAccountData(a.owner, a.data)) return;
      const t = token.parseTokenAccount(a.data);
      const decimals = this.mintDecimals(t.mint);
      if (decimals === null) return;
      out.push({
        accountIndex: i,
        mint: t.mint,
        owner: t.owner,
        programId: a.owner,
        uiTokenAmount: token.uiTokenAmount(t.amount, decimals),
      });
    });
    return out;
  }

  // simulate runs tx without committing. It returns the error (a TxError or
  // null) and what the runtime reported.
  simulate(tx, { sigVerify = false } = {}) {
    let loaded;
    try {
      loaded = this.loadedAddresses(tx.message);
    } catch (e) {
      if (e instanceof txerror.TxError) return emptyResult(e);
      throw e;
    }
    this.syncSysvars();
    const prev = this.svm.getSigverify();
    this.svm.setSigverify(sigVerify);
    let r;
    try {
      r = tx.message.version === 'legacy'
        ? this.svm.simulateLegacyTransaction(tx.bytes)
        : this.svm.simulateVersionedTransaction(tx.bytes);
    } finally {
      this.svm.setSigverify(prev);
    }
    if (r instanceof I.FailedTransactionMetadata) {
      return { ...metaFields(r.meta()), err: txerror.fromLiteSVM(r.err()), loaded, postAccounts: new Map() };
    }
    const postAccounts = new Map();
    for (const aa of r.postAccounts()) postAccounts.set(wire.b58encode(aa.address), aa.account());
    return { ...metaFields(r.meta()), err: null, loaded, postAccounts };
  }

  // execute processes tx for real at the current slot. It returns the record
  // of a transaction that landed (successfully or not), or null when the
  // transaction was dropped as a validator would drop it.
  execute(tx) {
    const signature = wire.b58encode(tx.signatures[0]);
    if (this.txs.has(signature)) return null;
    if (!this.isBlockhashValid(wire.b58encode(tx.message.recentBlockhash))) return null;
    let loaded;
    try {
      loaded = this.loadedAddresses(tx.message);
    } catch (e) {
      if (e instanceof txerror.TxError) return null;
      throw e;
    }
    const keys = [...tx.message.accountKeys, ...loaded.writable, ...loaded.readonly];
    this.syncSysvars();
    const preBalances = keys.map((k) => this.getBalance(k));
    const preTokenBalances = this.tokenBalances(keys);
    const r = tx.message.version === 'legacy'
      ? this.svm.sendLegacyTransaction(tx.bytes)
      : this.svm.sendVersionedTransaction(tx.bytes);
    let err = null;
    let meta;
    if (r instanceof I.FailedTransactionMetadata) {
      err = txerror.fromLiteSVM(r.err());
      if (!txerror.landsOnChain(err)) return null;
      meta = metaFields(r.meta());
    } else {
      meta = metaFields(r);
    }
    const record = {
      signature,
      slot: this.slot,
      blockTime: this.blockTime(),
      tx,
      loaded,
      keys,
      err,
      fee: this.fee(tx.message),
      preBalances,
      postBalances: keys.map((k) => this.getBalance(k)),
      preTokenBalances,
      postTokenBalances: this.tokenBalances(keys),
      memo: extractMemos(tx.message),
      ...meta,
    };
    this.txs.set(signature, record);
    this.transactionCount += 1n;
    for (const k of new Set(keys.map((k) => wire.b58encode(k)))) {
      let list = this.byAddress.get(k);
      if (!list) this.byAddress.set(k, (list = []));
      list.push(signature);
    }
    this.emit('transaction', record);
    return record;
  }

  // airdrop sends lamports from the faucet in a real, signed transfer.
  // Ed25519 signatures are deterministic, so a second identical request in
  // the same block would repeat the first signature; it waits for the next
  // block instead, as a client retrying on a real cluster would.
  airdrop(to, lamports) {
    for (;;) {
      const bytes = wire.buildTransferTx(this.faucet, to, lamports, wire.b58decode(this.latest.blockhash));
      const tx = wire.parseTransaction(bytes);
      const signature = wire.b58encode(tx.signatures[0]);
      if (this.txs.has(signature)) {
        this.advance();
        continue;
      }
      return { signature, record: this.execute(tx) };
    }
  }
}

function emptyResult(err) {
  return {
    err, logs: [], unitsConsumed: 0n, innerInstructions: [], returnData: null,
    loaded: { writable: [], readonly: [] }, postAccounts: new Map(),
  };
}

function metaFields(m) {
  const inner = [];
  m.innerInstructions().forEach((list, index) => {
    if (list.length === 0) return;
    inner.push({
      index,
      instructions: list.map((ii) => {
        const ci = ii.instruction();
        return {
          programIdIndex: ci.programIdIndex(),
          accounts: [...ci.accounts()],
          data: wire.b58encode(ci.data()),
          stackHeight: ii.stackHeight(),
        };
      }),
    });
  });
  const rd = m.returnData();
  const rdData = Buffer.from(rd.data());
  return {
    logs: m.logs(),
    unitsConsumed: m.computeUnitsConsumed(),
    innerInstructions: inner,
    returnData: rdData.length === 0 ? null : { programId: wire.b58encode(rd.programId()), data: [rdData.toString('base64'), 'base64'] },
  };
}

// extractMemos formats memo instructions as Solana's RPC does for
// getSignaturesForAddress: "[len] text" joined by "; ".
function extractMemos(msg) {
  const memos = [];
  for (const ix of msg.instructions) {
    if (!MEMO_PROGRAMS.has(wire.b58encode(msg.accountKeys[ix.programIdIndex]))) continue;
    let text;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(ix.data);
    } catch {
      text = '(unparseable)';
    }
    memos.push(`[${ix.data.length}] ${text}`);
  }
  return memos.length ? memos.join('; ') : null;
}

module.exports = { Chain, MAX_PROCESSING_AGE };
