package chain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/programs/memo"
	"github.com/gagliardetto/solana-go/programs/system"
	"github.com/gagliardetto/solana-go/programs/token"
	"github.com/gagliardetto/solana-go/rpc"
)

// SPL Token multisig limits and size.
const (
	maxMultisigSigners = 11
	multisigSize       = 355
)

// Escrow is a job's reward held in a token account owned by an SPL Token
// multisig: M of Signers (submitter, workers, verifiers) must sign to move
// it, so no single party can take it.
type Escrow struct {
	JobID    string             `json:"job_id"`
	Mint     solana.PublicKey   `json:"mint"`
	Multisig solana.PublicKey   `json:"multisig"`
	Account  solana.PublicKey   `json:"account"` // the multisig's associated token account
	Signers  []solana.PublicKey `json:"signers"`
	M        int                `json:"m"`
	Amount   uint64             `json:"amount"`
}

// Release is a transaction paying out an escrow, to be signed by M of its
// signers (SignRelease, on each signer's node) and then submitted.
type Release struct {
	Tx                   *solana.Transaction
	LastValidBlockHeight uint64
}

// OpenEscrow creates a multisig of signers needing m signatures, its token
// account for the configured mint, and moves amount into it from the
// wallet, in one transaction with the memo vft:1:<jobID>:escrow. It waits
// for the configured commitment. The multisig's address is derived from the
// fee payer and the job ID, so calling it again for the job (after a crash,
// say) returns the existing escrow, with a zero signature, and moves
// nothing; other signers for the same job are ErrConflict.
func (c *Client) OpenEscrow(ctx context.Context, jobID string, signers []solana.PublicKey, m int, amount uint64) (*Escrow, solana.Signature, error) {
	var sig solana.Signature
	if c.mint.IsZero() {
		return nil, sig, errors.New("chain: escrow needs an SPL mint: set chain.mint")
	}
	if len(signers) == 0 || len(signers) > maxMultisigSigners || m < 1 || m > len(signers) {
		return nil, sig, fmt.Errorf("chain: escrow of %s: %d of %d signers: want 1 <= m <= signers <= %d", jobID, m, len(signers), maxMultisigSigners)
	}
	if amount == 0 {
		return nil, sig, fmt.Errorf("chain: escrow of %s: amount is zero", jobID)
	}
	spl, err := c.mintInfo(ctx, c.mint)
	if err != nil {
		return nil, sig, err
	}
	seed := escrowSeed(jobID)
	ms, err := solana.CreateWithSeed(c.FeePayer(), seed, solana.TokenProgramID)
	if err != nil {
		return nil, sig, fmt.Errorf("escrow address: %w", err)
	}
	e := &Escrow{JobID: jobID, Mint: c.mint, Multisig: ms, Signers: slices.Clone(signers), M: m, Amount: amount}
	if e.Account, _, err = solana.FindAssociatedTokenAddress(e.Multisig, c.mint); err != nil {
		return nil, sig, fmt.Errorf("escrow token account: %w", err)
	}
	// The address is derived from the job, so the escrow is opened once:
	// a second transaction (a retry after a crash) fails as a whole
	// because the account exists, and here the existing one is returned.
	if found, err := c.existingEscrow(ctx, e); err != nil || found {
		return e, sig, err
	}
	msRent, err := c.rent(ctx, multisigSize)
	if err != nil {
		return nil, sig, err
	}
	accRent, err := c.rent(ctx, tokenAccountSize)
	if err != nil {
		return nil, sig, err
	}
	transfer, err := token.NewTransferCheckedInstruction(amount, spl.decimals, spl.source, c.mint, e.Account, c.Address(), nil).ValidateAndBuild()
	if err != nil {
		return nil, sig, fmt.Errorf("escrow transfer: %w", err)
	}
	ixs := []solana.Instruction{
		system.NewCreateAccountWithSeedInstruction(c.FeePayer(), seed, msRent, multisigSize, solana.TokenProgramID, c.FeePayer(), e.Multisig, c.FeePayer()).Build(),
		initializeMultisig2(e.Multisig, signers, m),
		createATAIdempotent(c.FeePayer(), e.Multisig, c.mint, e.Account),
		transfer,
		solana.NewInstruction(memo.ProgramID, solana.AccountMetaSlice{solana.Meta(c.Address()).SIGNER()}, []byte(Memo(jobID, "escrow"))),
	}
	bh, err := call(ctx, c, "getLatestBlockhash", func(ctx context.Context) (*rpc.GetLatestBlockhashResult, error) {
		return c.rpc.GetLatestBlockhash(ctx, c.cfg.commitment())
	})
	if err != nil {
		return nil, sig, fmt.Errorf("latest blockhash: %w", err)
	}
	tx, err := solana.NewTransaction(ixs, bh.Value.Blockhash, solana.TransactionPayer(c.FeePayer()))
	if err != nil {
		return nil, sig, fmt.Errorf("build escrow transaction: %w", err)
	}
	have, err := c.TokenBalance(ctx, c.mint, c.Address())
	if err != nil {
		return nil, sig, err
	}
	if have < amount {
		return nil, sig, &InsufficientFundsError{Account: c.Address(), Unit: "base units of " + c.mint.String(), Have: have, Need: amount, Detail: "escrow"}
	}
	fee, err := c.fee(ctx, tx)
	if err != nil {
		return nil, sig, err
	}
	minBalance, err := c.rent(ctx, 0)
	if err != nil {
		return nil, sig, err
	}
	if err := c.needLamports(ctx, c.FeePayer(), fee+msRent+accRent, fmt.Sprintf("%d fee + %d rent of the multisig and its token account", fee, msRent+accRent), minBalance); err != nil {
		return nil, sig, err
	}
	if _, err := tx.Sign(c.ownKey); err != nil {
		return nil, sig, fmt.Errorf("sign escrow transaction: %w", err)
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		return nil, sig, fmt.Errorf("encode escrow transaction: %w", err)
	}
	s := signed{raw: raw, sig: tx.Signatures[0], lastValid: bh.Value.LastValidBlockHeight}
	if err := c.send(ctx, s); err != nil {
		return nil, s.sig, fmt.Errorf("escrow of %s: %w", jobID, err)
	}
	if _, err := c.waitConfirmed(ctx, s.sig, s.lastValid); err != nil {
		return nil, s.sig, fmt.Errorf("escrow of %s: %w", jobID, err)
	}
	return e, s.sig, nil
}

// escrowSeed derives the seed of a job's multisig address (at most 32
// characters, as CreateAccountWithSeed requires).
func escrowSeed(jobID string) string {
	sum := sha256.Sum256([]byte("vft/1/escrow/" + jobID))
	return hex.EncodeToString(sum[:16])
}

// existingEscrow reports whether e's multisig already exists; if so it
// must have e's signers and threshold, and e.Amount becomes what it holds.
func (c *Client) existingEscrow(ctx context.Context, e *Escrow) (bool, error) {
	acc, err := call(ctx, c, "getAccountInfo", func(ctx context.Context) (*rpc.GetAccountInfoResult, error) {
		return c.rpc.GetAccountInfoWithOpts(ctx, e.Multisig, &rpc.GetAccountInfoOpts{Commitment: c.cfg.commitment()})
	})
	if errors.Is(err, rpc.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("escrow of %s: %w", e.JobID, err)
	}
	data := acc.Value.Data.GetBinary()
	if acc.Value.Owner != solana.TokenProgramID || len(data) != multisigSize || data[2] != 1 {
		return false, fmt.Errorf("chain: escrow of %s: %s exists but is not an SPL multisig", e.JobID, e.Multisig)
	}
	n := int(data[1])
	same := int(data[0]) == e.M && n == len(e.Signers)
	for i := 0; same && i < n; i++ {
		same = solana.PublicKeyFromBytes(data[3+32*i:3+32*(i+1)]) == e.Signers[i]
	}
	if !same {
		return false, fmt.Errorf("escrow of %s: %w (the multisig has other signers or threshold)", e.JobID, ErrConflict)
	}
	held, err := c.TokenBalance(ctx, e.Mint, e.Multisig)
	if err != nil {
		return false, err
	}
	e.Amount = held
	return true, nil
}

// initializeMultisig2 is SPL Token's InitializeMultisig2 (index 19). The
// signers are listed, not signing: solana-go's builder marks them as
// signers, which would make every member sign the creation.
func initializeMultisig2(multisig solana.PublicKey, signers []solana.PublicKey, m int) solana.Instruction {
	metas := solana.AccountMetaSlice{solana.Meta(multisig).WRITE()}
	for _, s := range signers {
		metas = append(metas, solana.Meta(s))
	}
	return solana.NewInstruction(solana.TokenProgramID, metas, []byte{19, byte(m)})
}

// ReleaseTx builds the transaction paying payouts out of e, approved by the
// given signers (exactly e.M of them), with the job's memo; this client's
// fee payer pays the fee and any new token account. It must fit one
// transaction.
func (c *Client) ReleaseTx(ctx context.Context, e *Escrow, resultCID string, payouts []Payout, approvers []solana.PublicKey) (*Release, error) {
	if len(approvers) != e.M {
		return nil, fmt.Errorf("chain: release of %s: %d approvers, the escrow needs exactly %d", e.JobID, len(approvers), e.M)
	}
	for _, a := range approvers {
		if !slices.Contains(e.Signers, a) {
			return nil, fmt.Errorf("chain: release of %s: %s is not a signer of the escrow", e.JobID, a)
		}
	}
	norm, err := normalize(payouts)
	if err != nil {
		return nil, fmt.Errorf("release of %s: %w", e.JobID, err)
	}
	spl, err := c.mintInfo(ctx, e.Mint)
	if err != nil {
		return nil, err
	}
	missing, err := c.missingAccounts(ctx, spl, norm)
	if err != nil {
		return nil, err
	}
	ixs := []solana.Instruction{solana.NewInstruction(memo.ProgramID, solana.AccountMetaSlice{solana.Meta(c.FeePayer()).SIGNER()}, []byte(Memo(e.JobID, resultCID)))}
	var total uint64
	for _, p := range norm {
		total += p.Amount
		dest, _, err := solana.FindAssociatedTokenAddress(p.Recipient, e.Mint)
		if err != nil {
			return nil, fmt.Errorf("token account of %s: %w", p.Recipient, err)
		}
		if missing[p.Recipient] {
			ixs = append(ixs, createATAIdempotent(c.FeePayer(), p.Recipient, e.Mint, dest))
		}
		ix, err := token.NewTransferCheckedInstruction(p.Amount, spl.decimals, e.Account, e.Mint, dest, e.Multisig, approvers).ValidateAndBuild()
		if err != nil {
			return nil, fmt.Errorf("release transfer to %s: %w", p.Recipient, err)
		}
		ixs = append(ixs, ix)
	}
	if total > e.Amount {
		return nil, fmt.Errorf("chain: release of %s pays %d, more than the %d held", e.JobID, total, e.Amount)
	}
	bh, err := call(ctx, c, "getLatestBlockhash", func(ctx context.Context) (*rpc.GetLatestBlockhashResult, error) {
		return c.rpc.GetLatestBlockhash(ctx, c.cfg.commitment())
	})
	if err != nil {
		return nil, fmt.Errorf("latest blockhash: %w", err)
	}
	tx, err := solana.NewTransaction(ixs, bh.Value.Blockhash, solana.TransactionPayer(c.FeePayer()))
	if err != nil {
		return nil, fmt.Errorf("build release transaction: %w", err)
	}
	if size, err := c.txSize(ixs); err != nil || size > MaxTxSize {
		return nil, fmt.Errorf("chain: release of %s to %d payees does not fit one transaction (%d bytes, %v)", e.JobID, len(norm), size, err)
	}
	return &Release{Tx: tx, LastValidBlockHeight: bh.Value.LastValidBlockHeight}, nil
}

// SignRelease adds key's signature to a release; key must be one of its approvers.
func SignRelease(r *Release, key solana.PrivateKey) error {
	if !slices.Contains(r.Tx.Message.Signers(), key.PublicKey()) {
		return fmt.Errorf("chain: %s is not an approver of this release", key.PublicKey())
	}
	if _, err := r.Tx.PartialSign(func(pk solana.PublicKey) *solana.PrivateKey {
		if pk == key.PublicKey() {
			return &key
		}
		return nil
	}); err != nil {
		return fmt.Errorf("sign release: %w", err)
	}
	return nil
}

// SubmitRelease adds the fee payer's signature, sends the release once
// every approver signed, and waits for the configured commitment. It keeps
// no record: a node uses Journal.RecordRelease and FinishRelease, which
// survive a crash.
func (c *Client) SubmitRelease(ctx context.Context, r *Release) (solana.Signature, error) {
	s, err := c.signRelease(r)
	if err != nil {
		var sig solana.Signature
		if len(r.Tx.Signatures) > 0 {
			sig = r.Tx.Signatures[0]
		}
		return sig, err
	}
	if err := c.send(ctx, s); err != nil {
		return s.sig, fmt.Errorf("release: %w", err)
	}
	if _, err := c.waitConfirmed(ctx, s.sig, s.lastValid); err != nil {
		return s.sig, fmt.Errorf("release: %w", err)
	}
	return s.sig, nil
}
