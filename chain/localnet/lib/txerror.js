'use strict';
// Conversion of LiteSVM's transaction errors to Solana's JSON form
// (serde of solana_transaction_error::TransactionError) and to the text
// that Display prints, which RPC error messages embed.

const I = require('litesvm/dist/internal');

// Order matches TransactionErrorFieldless in litesvm's internal.d.ts.
const TX_FIELDLESS = [
  ['AccountInUse', 'Account in use'],
  ['AccountLoadedTwice', 'Account loaded twice'],
  ['AccountNotFound', 'Attempt to debit an account but found no record of a prior credit.'],
  ['ProgramAccountNotFound', 'Attempt to load a program that does not exist'],
  ['InsufficientFundsForFee', 'Insufficient funds for fee'],
  ['InvalidAccountForFee', 'This account may not be used to pay transaction fees'],
  ['AlreadyProcessed', 'This transaction has already been processed'],
  ['BlockhashNotFound', 'Blockhash not found'],
  ['CallChainTooDeep', 'Loader call chain is too deep'],
  ['MissingSignatureForFee', 'Transaction requires a fee but has no signature present'],
  ['InvalidAccountIndex', 'Transaction contains an invalid account reference'],
  ['SignatureFailure', 'Transaction did not pass signature verification'],
  ['InvalidProgramForExecution', 'This program may not be used for executing instructions'],
  ['SanitizeFailure', 'Transaction failed to sanitize accounts offsets correctly'],
  ['ClusterMaintenance', 'Transactions are currently disabled due to cluster maintenance'],
  ['AccountBorrowOutstanding', 'Transaction processing left an account with an outstanding borrowed reference'],
  ['WouldExceedMaxBlockCostLimit', 'Transaction would exceed max Block Cost Limit'],
  ['UnsupportedVersion', 'Transaction version is unsupported'],
  ['InvalidWritableAccount', 'Transaction loads a writable account that cannot be written'],
  ['WouldExceedMaxAccountCostLimit', 'Transaction would exceed max account limit within the block'],
  ['WouldExceedAccountDataBlockLimit', 'Transaction would exceed account data limit within the block'],
  ['TooManyAccountLocks', 'Transaction locked too many accounts'],
  ['AddressLookupTableNotFound', "Transaction loads an address table account that doesn't exist"],
  ['InvalidAddressLookupTableOwner', 'Transaction loads an address table account with an invalid owner'],
  ['InvalidAddressLookupTableData', 'Transaction loads an address table account with invalid data'],
  ['InvalidAddressLookupTableIndex', 'Transaction address table lookup uses an invalid index'],
  ['InvalidRentPayingAccount', 'Transaction leaves an account with a lower balance than rent-exempt minimum'],
  ['WouldExceedMaxVoteCostLimit', 'Transaction would exceed max Vote Cost Limit'],
  ['WouldExceedAccountDataTotalLimit', 'Transaction would exceed total account data limit'],
  ['MaxLoadedAccountsDataSizeExceeded', 'Transaction exceeded max loaded accounts data size cap'],
  ['ResanitizationNeeded', 'Sanitized transaction differed before/after feature activiation. Needs to be resanitized.'],
  ['InvalidLoadedAccountsDataSizeLimit', 'LoadedAccountsDataSizeLimit set for transaction must be greater than 0.'],
  ['UnbalancedTransaction', 'Sum of account balances before and after transaction do not match'],
  ['ProgramCacheHitMaxLimit', 'Program cache hit max limit'],
  ['CommitCancelled', 'CommitCancelled'],
];

// Order matches InstructionErrorFieldless in litesvm's internal.d.ts.
const IX_FIELDLESS = [
  ['GenericError', 'generic instruction error'],
  ['InvalidArgument', 'invalid program argument'],
  ['InvalidInstructionData', 'invalid instruction data'],
  ['InvalidAccountData', 'invalid account data for instruction'],
  ['AccountDataTooSmall', 'account data too small for instruction'],
  ['InsufficientFunds', 'insufficient funds for instruction'],
  ['IncorrectProgramId', 'incorrect program id for instruction'],
  ['MissingRequiredSignature', 'missing required signature for instruction'],
  ['AccountAlreadyInitialized', 'instruction requires an uninitialized account'],
  ['UninitializedAccount', 'instruction requires an initialized account'],
  ['UnbalancedInstruction', 'sum of account balances before and after instruction do not match'],
  ['ModifiedProgramId', 'instruction illegally modified the program id of an account'],
  ['ExternalAccountLamportSpend', 'instruction spent from the balance of an account it does not own'],
  ['ExternalAccountDataModified', 'instruction modified data of an account it does not own'],
  ['ReadonlyLamportChange', 'instruction changed the balance of a read-only account'],
  ['ReadonlyDataModified', 'instruction modified data of a read-only account'],
  ['DuplicateAccountIndex', 'instruction contains duplicate accounts'],
  ['ExecutableModified', 'instruction changed executable bit of an account'],
  ['RentEpochModified', 'instruction modified rent epoch of an account'],
  ['NotEnoughAccountKeys', 'insufficient account keys for instruction'],
  ['AccountDataSizeChanged', "program other than the account's owner changed the size of the account data"],
  ['AccountNotExecutable', 'instruction expected an executable account'],
  ['AccountBorrowFailed', 'instruction tries to borrow reference for an account which is already borrowed'],
  ['AccountBorrowOutstanding', 'instruction left account with an outstanding borrowed reference'],
  ['DuplicateAccountOutOfSync', 'instruction modifications of multiply-passed account differ'],
  ['InvalidError', 'program returned invalid error code'],
  ['ExecutableDataModified', 'instruction changed executable accounts data'],
  ['ExecutableLamportChange', 'instruction changed the balance of an executable account'],
  ['ExecutableAccountNotRentExempt', 'executable accounts must be rent exempt'],
  ['UnsupportedProgramId', 'Unsupported program id'],
  ['CallDepth', 'Cross-program invocation call depth too deep'],
  ['MissingAccount', 'An account required by the instruction is missing'],
  ['ReentrancyNotAllowed', 'Cross-program invocation reentrancy not allowed for this instruction'],
  ['MaxSeedLengthExceeded', 'Length of the seed is too long for address generation'],
  ['InvalidSeeds', 'Provided seeds do not result in a valid address'],
  ['InvalidRealloc', 'Failed to reallocate account data'],
  ['ComputationalBudgetExceeded', 'Computational budget exceeded'],
  ['PrivilegeEscalation', 'Cross-program invocation with unauthorized signer or writable account'],
  ['ProgramEnvironmentSetupFailure', 'Failed to create program execution environment'],
  ['ProgramFailedToComplete', 'Program failed to complete'],
  ['ProgramFailedToCompile', 'Program failed to compile'],
  ['Immutable', 'Account is immutable'],
  ['IncorrectAuthority', 'Incorrect authority provided'],
  ['AccountNotRentExempt', 'An account does not have enough lamports to be rent-exempt'],
  ['InvalidAccountOwner', 'Invalid account owner'],
  ['ArithmeticOverflow', 'Program arithmetic overflowed'],
  ['UnsupportedSysvar', 'Unsupported sysvar'],
  ['IllegalOwner', 'Provided owner is not allowed'],
  ['MaxAccountsDataAllocationsExceeded', 'Accounts data allocations exceeded the maximum allowed per transaction'],
  ['MaxAccountsExceeded', 'Max accounts exceeded'],
  ['MaxInstructionTraceLengthExceeded', 'Max instruction trace length exceeded'],
  ['BuiltinProgramsMustConsumeComputeUnits', 'Builtin programs must consume compute units'],
  ['BorshIoError', 'Failed to serialize or deserialize account data'],
];

// A TxError carries both forms of one transaction error.
class TxError {
  constructor(json, text) {
    this.json = json;
    this.text = text;
  }
}

const byName = new Map(TX_FIELDLESS.map(([n, t]) => [n, t]));

function fieldless(name) {
  return new TxError(name, byName.get(name) || name);
}

function instructionError(e) {
  if (typeof e === 'number') {
    const [n, t] = IX_FIELDLESS[e] || [`Unknown(${e})`, `unknown instruction error ${e}`];
    return { json: n, text: t };
  }
  if (e instanceof I.InstructionErrorCustom) {
    return { json: { Custom: e.code }, text: `custom program error: 0x${e.code.toString(16)}` };
  }
  if (e instanceof I.InstructionErrorBorshIo) {
    return { json: { BorshIoError: e.msg }, text: `Failed to serialize or deserialize account data: ${e.msg}` };
  }
  return { json: 'GenericError', text: String(e) };
}

// fromLiteSVM converts FailedTransactionMetadata.err() to a TxError.
function fromLiteSVM(e) {
  if (typeof e === 'number') {
    const [n, t] = TX_FIELDLESS[e] || [`Unknown(${e})`, `unknown transaction error ${e}`];
    return new TxError(n, t);
  }
  if (e instanceof I.TransactionErrorInstructionError) {
    const ie = instructionError(e.err());
    return new TxError({ InstructionError: [e.index, ie.json] },
      `Error processing Instruction ${e.index}: ${ie.text}`);
  }
  if (e instanceof I.TransactionErrorDuplicateInstruction) {
    return new TxError({ DuplicateInstruction: e.index },
      `Transaction contains a duplicate instruction (${e.index}) that is not allowed`);
  }
  if (e instanceof I.TransactionErrorInsufficientFundsForRent) {
    return new TxError({ InsufficientFundsForRent: { account_index: e.accountIndex } },
      `Transaction results in an account (${e.accountIndex}) with insufficient funds for rent`);
  }
  if (e instanceof I.TransactionErrorProgramExecutionTemporarilyRestricted) {
    return new TxError({ ProgramExecutionTemporarilyRestricted: { account_index: e.accountIndex } },
      `Execution of the program referenced by account at index ${e.accountIndex} is temporarily restricted.`);
  }
  return new TxError('GenericError', String(e));
}

// landsOnChain reports whether a transaction that failed with this error is
// still recorded in a block (and pays its fee), as on a real cluster.
function landsOnChain(err) {
  const j = err.json;
  return typeof j === 'object' && j !== null &&
    ('InstructionError' in j || 'InsufficientFundsForRent' in j || 'ProgramExecutionTemporarilyRestricted' in j);
}

module.exports = { TxError, fieldless, fromLiteSVM, landsOnChain };
