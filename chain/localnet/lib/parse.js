'use strict';
// jsonParsed instruction decoding for the programs VFT pays with (System,
// SPL Token, Associated Token Account, Memo), in Solana's shapes. Other
// instructions stay partially decoded ({programId, accounts, data}).

const wire = require('./wire');
const token = require('./token');

const SYSTEM = '11111111111111111111111111111111';
const ATA = 'ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL';
const MEMO_PROGRAMS = new Set([
  'MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr',
  'Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo',
]);

// authority names the signing account(s) of a token instruction: a single
// owner, or a multisig followed by its signers.
function authority(info, name, accounts, at) {
  if (accounts.length > at + 1) {
    info[`multisig${name[0].toUpperCase()}${name.slice(1)}`] = accounts[at];
    info.signers = accounts.slice(at + 1);
  } else {
    info[name] = accounts[at];
  }
  return info;
}

function parseSystem(accounts, data) {
  if (data.length < 4) return null;
  const kind = data.readUInt32LE(0);
  if (kind === 0 && data.length >= 52) {
    return {
      type: 'createAccount',
      info: {
        lamports: data.readBigUInt64LE(4),
        newAccount: accounts[1],
        owner: wire.b58encode(data.subarray(20, 52)),
        source: accounts[0],
        space: data.readBigUInt64LE(12),
      },
    };
  }
  if (kind === 2 && data.length >= 12) {
    return { type: 'transfer', info: { destination: accounts[1], lamports: data.readBigUInt64LE(4), source: accounts[0] } };
  }
  return null;
}

function parseToken(accounts, data) {
  if (data.length < 1) return null;
  const amount = () => data.readBigUInt64LE(1).toString();
  switch (data[0]) {
    case 3: // Transfer
      if (data.length < 9) return null;
      return { type: 'transfer', info: authority({ amount: amount(), destination: accounts[1], source: accounts[0] }, 'authority', accounts, 2) };
    case 7: // MintTo
      if (data.length < 9) return null;
      return { type: 'mintTo', info: authority({ account: accounts[1], amount: amount(), mint: accounts[0] }, 'mintAuthority', accounts, 2) };
    case 12: // TransferChecked
      if (data.length < 10) return null;
      return {
        type: 'transferChecked',
        info: authority({
          destination: accounts[2],
          mint: accounts[1],
          source: accounts[0],
          tokenAmount: token.uiTokenAmount(data.readBigUInt64LE(1), data[9]),
        }, 'authority', accounts, 3),
      };
    case 14: // MintToChecked
      if (data.length < 10) return null;
      return {
        type: 'mintToChecked',
        info: authority({
          account: accounts[1],
          mint: accounts[0],
          tokenAmount: token.uiTokenAmount(data.readBigUInt64LE(1), data[9]),
        }, 'mintAuthority', accounts, 2),
      };
    case 20: // InitializeMint2
      if (data.length < 35) return null;
      return {
        type: 'initializeMint2',
        info: {
          decimals: data[1],
          ...(data.length >= 36 && data[34] === 1 ? { freezeAuthority: wire.b58encode(data.subarray(35, 67)) } : {}),
          mint: accounts[0],
          mintAuthority: wire.b58encode(data.subarray(2, 34)),
        },
      };
    default:
      return null;
  }
}

function parseATA(accounts, data) {
  const kind = data.length === 0 ? 0 : data[0];
  if (kind !== 0 && kind !== 1) return null;
  return {
    type: kind === 0 ? 'create' : 'createIdempotent',
    info: {
      account: accounts[1],
      mint: accounts[3],
      source: accounts[0],
      systemProgram: accounts[4],
      tokenProgram: accounts[5],
      wallet: accounts[2],
    },
  };
}

// parseInstruction renders one instruction (program and account addresses
// already resolved) in Solana's jsonParsed form.
function parseInstruction(programId, accounts, data, stackHeight = null) {
  let parsed = null;
  let program = null;
  try {
    if (programId === SYSTEM) {
      program = 'system';
      parsed = parseSystem(accounts, data);
    } else if (programId === token.TOKEN_PROGRAM || programId === token.TOKEN_2022_PROGRAM) {
      program = programId === token.TOKEN_PROGRAM ? 'spl-token' : 'spl-token-2022';
      parsed = parseToken(accounts, data);
    } else if (programId === ATA) {
      program = 'spl-associated-token-account';
      parsed = parseATA(accounts, data);
    } else if (MEMO_PROGRAMS.has(programId)) {
      return { parsed: data.toString('utf8'), program: 'spl-memo', programId, stackHeight };
    }
  } catch {
    parsed = null;
  }
  if (parsed) return { parsed, program, programId, stackHeight };
  return { accounts, data: wire.b58encode(data), programId, stackHeight };
}

module.exports = { parseInstruction };
