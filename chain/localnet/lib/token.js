'use strict';
// SPL Token account layouts, UI amounts and the jsonParsed account form.

const { b58encode } = require('./wire');

const TOKEN_PROGRAM = 'TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA';
const TOKEN_2022_PROGRAM = 'TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb';
const ACCOUNT_LEN = 165;
const MINT_LEN = 82;
const ACCOUNT_TYPE_OFFSET = 165; // Token-2022 extension discriminator

function isTokenProgram(owner) {
  return owner === TOKEN_PROGRAM || owner === TOKEN_2022_PROGRAM;
}

function coptionKey(data, off) {
  return data.readUInt32LE(off) === 1 ? b58encode(data.subarray(off + 4, off + 36)) : null;
}

function isTokenAccountData(owner, data) {
  if (!isTokenProgram(owner)) return false;
  if (data.length === ACCOUNT_LEN) return true;
  return owner === TOKEN_2022_PROGRAM && data.length > ACCOUNT_LEN && data[ACCOUNT_TYPE_OFFSET] === 2;
}

function isMintData(owner, data) {
  if (!isTokenProgram(owner)) return false;
  if (data.length === MINT_LEN) return true;
  return owner === TOKEN_2022_PROGRAM && data.length > ACCOUNT_LEN && data[ACCOUNT_TYPE_OFFSET] === 1;
}

function parseTokenAccount(data) {
  const states = ['uninitialized', 'initialized', 'frozen'];
  return {
    mint: b58encode(data.subarray(0, 32)),
    owner: b58encode(data.subarray(32, 64)),
    amount: data.readBigUInt64LE(64),
    delegate: coptionKey(data, 72),
    state: states[data[108]] || 'uninitialized',
    isNative: data.readUInt32LE(109) === 1,
    rentExemptReserve: data.readUInt32LE(109) === 1 ? data.readBigUInt64LE(113) : null,
    delegatedAmount: data.readBigUInt64LE(121),
    closeAuthority: coptionKey(data, 129),
  };
}

function parseMint(data) {
  return {
    mintAuthority: coptionKey(data, 0),
    supply: data.readBigUInt64LE(36),
    decimals: data[44],
    isInitialized: data[45] === 1,
    freezeAuthority: coptionKey(data, 46),
  };
}

// uiTokenAmount renders a base-unit amount the way Solana's RPC does.
function uiTokenAmount(amount, decimals) {
  amount = BigInt(amount);
  let s = amount.toString();
  if (decimals > 0) {
    s = s.padStart(decimals + 1, '0');
    s = `${s.slice(0, s.length - decimals)}.${s.slice(s.length - decimals)}`;
    s = s.replace(/0+$/, '').replace(/\.$/, '');
  }
  return { amount: amount.toString(), decimals, uiAmount: Number(s), uiAmountString: s };
}

// jsonParsedAccount returns Solana's {program, parsed, space} form, or null
// when the account is not one this server knows how to parse.
function jsonParsedAccount(owner, data, getMintDecimals) {
  const program = owner === TOKEN_PROGRAM ? 'spl-token' : 'spl-token-2022';
  if (isTokenAccountData(owner, data)) {
    const a = parseTokenAccount(data);
    const decimals = getMintDecimals(a.mint);
    if (decimals === null) return null;
    const info = {
      isNative: a.isNative,
      mint: a.mint,
      owner: a.owner,
      state: a.state,
      tokenAmount: uiTokenAmount(a.amount, decimals),
    };
    if (a.delegate) {
      info.delegate = a.delegate;
      info.delegatedAmount = uiTokenAmount(a.delegatedAmount, decimals);
    }
    if (a.isNative) info.rentExemptReserve = uiTokenAmount(a.rentExemptReserve, 9);
    if (a.closeAuthority) info.closeAuthority = a.closeAuthority;
    return { program, parsed: { info, type: 'account' }, space: data.length };
  }
  if (isMintData(owner, data)) {
    const m = parseMint(data);
    return {
      program,
      parsed: {
        info: {
          decimals: m.decimals,
          freezeAuthority: m.freezeAuthority,
          isInitialized: m.isInitialized,
          mintAuthority: m.mintAuthority,
          supply: m.supply.toString(),
        },
        type: 'mint',
      },
      space: data.length,
    };
  }
  return null;
}

module.exports = {
  TOKEN_PROGRAM, TOKEN_2022_PROGRAM, isTokenProgram, isTokenAccountData, isMintData,
  parseTokenAccount, parseMint, uiTokenAmount, jsonParsedAccount,
};
