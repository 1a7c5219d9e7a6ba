package chain

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/rpc"
)

// ErrNoEscrow means no escrow was opened for a job (its multisig or its
// token account does not exist).
var ErrNoEscrow = errors.New("chain: no escrow")

// SPL token account layout: mint, owner, amount, ..., state.
const (
	tokenAccountStateOffset = 108
	tokenStateInitialized   = 1
)

// EscrowAddress is where the escrow of jobID opened by payer (the fee
// payer of the client that opened it) lives: its multisig and the
// multisig's associated token account for mint. Anyone can derive it, so a
// worker can find a job's escrow without asking the submitter.
func EscrowAddress(payer solana.PublicKey, jobID string, mint solana.PublicKey) (multisig, account solana.PublicKey, err error) {
	multisig, err = solana.CreateWithSeed(payer, escrowSeed(jobID), solana.TokenProgramID)
	if err != nil {
		return multisig, account, fmt.Errorf("escrow address of %s: %w", jobID, err)
	}
	account, _, err = solana.FindAssociatedTokenAddress(multisig, mint)
	if err != nil {
		return multisig, account, fmt.Errorf("escrow token account of %s: %w", jobID, err)
	}
	return multisig, account, nil
}

// GetEscrow reads the escrow of jobID opened by payer in mint from the
// chain: the multisig's signers and threshold, and what its token account
// holds. It checks what the runtime would enforce anyway (the multisig is
// an initialized SPL multisig; the token account belongs to it, is in mint
// and is not frozen) so that a caller's checks start from a sound escrow.
// No escrow is an error wrapping ErrNoEscrow.
func (c *Client) GetEscrow(ctx context.Context, jobID string, payer, mint solana.PublicKey) (*Escrow, error) {
	ms, acc, err := EscrowAddress(payer, jobID, mint)
	if err != nil {
		return nil, err
	}
	out, err := call(ctx, c, "getMultipleAccounts", func(ctx context.Context) (*rpc.GetMultipleAccountsResult, error) {
		return c.rpc.GetMultipleAccountsWithOpts(ctx, []solana.PublicKey{ms, acc}, &rpc.GetMultipleAccountsOpts{Commitment: c.cfg.commitment()})
	})
	if err != nil {
		return nil, fmt.Errorf("escrow of %s: %w", jobID, err)
	}
	if len(out.Value) != 2 {
		return nil, fmt.Errorf("escrow of %s: server returned %d accounts for 2", jobID, len(out.Value))
	}
	msAcc, tokAcc := out.Value[0], out.Value[1]
	if msAcc == nil {
		return nil, fmt.Errorf("%w for job %s: multisig %s does not exist (opened by %s?)", ErrNoEscrow, jobID, ms, payer)
	}
	e := &Escrow{JobID: jobID, Mint: mint, Multisig: ms, Account: acc}
	if err := parseMultisig(e, msAcc.Owner, msAcc.Data.GetBinary()); err != nil {
		return nil, err
	}
	if tokAcc == nil {
		return nil, fmt.Errorf("%w for job %s in mint %s: the multisig has no token account %s for it", ErrNoEscrow, jobID, mint, acc)
	}
	if err := parseEscrowAccount(e, tokAcc.Owner, tokAcc.Data.GetBinary()); err != nil {
		return nil, err
	}
	return e, nil
}

// parseMultisig reads an escrow's SPL multisig account, as an RPC node
// returned it (so any bytes), into e: its threshold and signers.
func parseMultisig(e *Escrow, owner solana.PublicKey, data []byte) error {
	jobID, ms := e.JobID, e.Multisig
	if owner != solana.TokenProgramID || len(data) != multisigSize || data[2] != 1 {
		return fmt.Errorf("chain: escrow of %s: %s is not an initialized SPL multisig", jobID, ms)
	}
	e.M = int(data[0])
	n := int(data[1])
	if n > maxMultisigSigners {
		return fmt.Errorf("chain: escrow of %s: multisig lists %d signers, more than %d", jobID, n, maxMultisigSigners)
	}
	for i := range n {
		e.Signers = append(e.Signers, solana.PublicKeyFromBytes(data[3+32*i:3+32*(i+1)]))
	}
	return nil
}

// parseEscrowAccount reads an escrow's token account, as an RPC node
// returned it, into e: the amount it holds, once it is the multisig's
// initialized account in e's mint.
func parseEscrowAccount(e *Escrow, tokOwner solana.PublicKey, tok []byte) error {
	jobID, ms, acc, mint := e.JobID, e.Multisig, e.Account, e.Mint
	if tokOwner != solana.TokenProgramID || len(tok) != tokenAccountSize {
		return fmt.Errorf("chain: escrow of %s: %s is not an SPL token account", jobID, acc)
	}
	if got := solana.PublicKeyFromBytes(tok[0:32]); got != mint {
		return fmt.Errorf("chain: escrow of %s: token account %s is in mint %s, want %s", jobID, acc, got, mint)
	}
	if got := solana.PublicKeyFromBytes(tok[32:64]); got != ms {
		return fmt.Errorf("chain: escrow of %s: token account %s is owned by %s, not the multisig %s", jobID, acc, got, ms)
	}
	if st := tok[tokenAccountStateOffset]; st != tokenStateInitialized {
		return fmt.Errorf("chain: escrow of %s: token account %s is frozen or uninitialized (state %d): its funds cannot move", jobID, acc, st)
	}
	e.Amount = binary.LittleEndian.Uint64(tok[64:72])
	return nil
}

// BlockhashValid reports whether transactions with blockhash can still
// land. A signer uses it to refuse a message whose signature would stay
// usable for long, or that can never land.
func (c *Client) BlockhashValid(ctx context.Context, blockhash solana.Hash) (bool, error) {
	out, err := call(ctx, c, "isBlockhashValid", func(ctx context.Context) (*rpc.IsValidBlockhashResult, error) {
		return c.rpc.IsBlockhashValid(ctx, blockhash, c.cfg.commitment())
	})
	if err != nil {
		return false, fmt.Errorf("blockhash %s: %w", blockhash, err)
	}
	return out.Value, nil
}
